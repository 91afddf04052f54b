// Drives the console's Sending servers view in Debian's chromium
// (playwright-core, no browser of its own). Run by
// crates/portcullis/tests/servers_console.rs, which starts the gateway and
// writes the servers into its store.
//
// Settings come from the environment:
//   SERVERS_URL        http://127.0.0.1:PORT
//   SERVERS_PASSWORD   every account's password
//   SERVERS_ADMIN      the admin's name
//   SERVERS_USER       a user's name
//   SERVERS_EXTERNAL   the external server's key (unsupported, throttled 25%)
//   SERVERS_OWN_HOST   the own out-of-date server's host name
//   SERVERS_HOSTILE    the hostile server's key (markup in its host name)
//   SERVERS_SHOT       where to save the picture of the view (servers.png)
//   CHROMIUM           the browser (default /usr/bin/chromium)
// Prints `servers: {json}` with what the API said, then
// `servers: all steps passed`.
import { env, launch, step } from './common.mjs';
import assert from 'node:assert/strict';

const base = env('SERVERS_URL');
const password = env('SERVERS_PASSWORD');
const external = env('SERVERS_EXTERNAL');
const ownHost = env('SERVERS_OWN_HOST');
const hostile = env('SERVERS_HOSTILE');

const browser = await launch();
const problems = [];
const said = {};
try {
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
  const page = await context.newPage();
  // Anything the page's policy blocks, any script error and any dialog (an
  // injected alert) fails the run. The user's 403 is expected.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', async (d) => {
    problems.push(`a dialog opened: ${d.message()}`);
    await d.dismiss();
  });
  page.on('request', (r) => {
    if (!r.url().startsWith(base)) problems.push(`a request left the gateway: ${r.url()}`);
  });
  // The API as the page calls it (same origin, the session's cookie).
  const apiGet = (p) => page.evaluate(async (url) => {
    const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    let body = null;
    try {
      body = await r.json();
    } catch {
      body = null;
    }
    return { status: r.status, body };
  }, p);
  const signIn = async (name) => {
    await page.getByLabel('Name').fill(name);
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Held mail' }).waitFor();
  };

  step('the admin signs in and is warned about the own server');
  await page.goto(`${base}/console`);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await signIn(env('SERVERS_ADMIN'));
  const banner = page.locator('#own-banner');
  await banner.waitFor({ state: 'visible' });
  const warning = await page.locator('#own-banner-text').textContent();
  assert.match(warning, /^1 of your own mail servers runs out-of-date software: /, warning);
  assert.ok(warning.includes(ownHost), warning);
  assert.ok(warning.includes('Exchange Online throttle and block'), warning);
  said.banner = warning;

  step('the view lists the servers with their stage');
  await page.getByRole('link', { name: 'Sending servers', exact: true }).click();
  await page.getByRole('heading', { name: 'Sending servers' }).waitFor();
  await page.waitForURL((u) => u.pathname === '/console/servers');
  // The banner stays on every admin page.
  await banner.waitFor({ state: 'visible' });
  const row = page.locator('#servers-body tr', { has: page.locator('td.key', { hasText: external }) });
  await row.waitFor();
  assert.equal(await row.locator('td.stage').evaluate((td) => td.firstChild.textContent), 'throttle 25%');
  assert.match(await row.locator('td.next').textContent(), /^throttle 50%on \d{4}-\d{2}-\d{2}$/);
  assert.match(await row.locator('td.held').textContent(), /^—$/);
  assert.ok((await row.textContent()).includes('unsupported'));

  step('a hostile host name stays text');
  const evil = page.locator('#servers-body td.key', { hasText: hostile });
  await evil.waitFor();
  assert.equal(await evil.evaluate((td) => td.firstChild.textContent), hostile);
  assert.equal(await page.locator('#main img').count(), 0, 'markup from a host name became an element');

  step('the status filter');
  await page.locator('#s-status').selectOption('unsupported');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.waitForURL((u) => u.searchParams.get('status') === 'unsupported');
  await page.locator('#servers-summary', { hasText: '1 server shown' }).waitFor();
  await row.waitFor();
  assert.equal(await page.locator('#servers-body td.key', { hasText: hostile }).count(), 0);
  await page.locator('#s-reset').click();
  await page.waitForURL((u) => u.pathname === '/console/servers' && !u.search);
  await page.locator('#servers-summary', { hasText: '3 servers shown' }).waitFor();
  await page.screenshot({ path: env('SERVERS_SHOT'), fullPage: true });

  step('pause it for 10 days');
  await row.getByRole('button', { name: `Pause ${external}` }).click();
  await page.locator('#pause-box').waitFor({ state: 'visible' });
  await page.locator('#pause-days').fill('10');
  await page.locator('#pause-yes').click();
  await page.locator('#servers-result', { hasText: `Enforcement of ${external} paused for 10 days` }).waitFor();
  await row.locator('td.held', { hasText: /^paused until \d{4}-\d{2}-\d{2}$/ }).waitFor();
  assert.ok((await row.locator('td.stage').textContent()).includes('acting as report'));
  let api = await apiGet('/api/servers');
  let server = api.body.servers.find((s) => s.key === external);
  assert.equal(api.status, 200);
  assert.equal(typeof server.paused_until, 'number');
  const days = (server.paused_until - Date.now()) / 86_400_000;
  assert.ok(days > 9.9 && days <= 10, `paused for ${days} days`);
  assert.equal(server.enforced, 'report');
  said.paused = server;

  step('resume it, and a pause beyond the allowance is refused');
  await row.getByRole('button', { name: `Resume ${external}` }).click();
  await page.locator('#servers-result', { hasText: `Enforcement of ${external} resumed.` }).waitFor();
  await row.locator('td.held', { hasText: /^—$/ }).waitFor();
  await row.getByRole('button', { name: `Pause ${external}` }).click();
  await page.locator('#pause-days').fill('95');
  await page.locator('#pause-yes').click();
  await page.locator('#servers-result.error', { hasText: /89 days left/ }).waitFor();
  await row.locator('td.held', { hasText: /^—$/ }).waitFor();

  step('pause it again, then exempt it');
  await row.getByRole('button', { name: `Pause ${external}` }).click();
  await page.locator('#pause-days').fill('10');
  await page.locator('#pause-days').press('Enter');
  await row.locator('td.held', { hasText: /^paused until / }).waitFor();
  await row.getByRole('button', { name: `Exempt ${external}`, exact: true }).click();
  await page.locator('#servers-result', { hasText: `${external} is exempt` }).waitFor();
  await row.locator('td.held', { hasText: /, exempt$/ }).waitFor();
  await row.getByRole('button', { name: `Unexempt ${external}`, exact: true }).waitFor();
  api = await apiGet('/api/servers?status=unsupported');
  server = api.body.servers.find((s) => s.key === external);
  assert.equal(server.exempt, true);
  assert.equal(typeof server.paused_until, 'number');
  said.exempt = server;
  said.mode = api.body.mode;
  said.own_out_of_date = api.body.own_out_of_date;

  step('the admin signs out; a user gets no view');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  assert.equal(await banner.isVisible(), false, 'the banner outlived the session');
  await signIn(env('SERVERS_USER'));
  assert.equal(await page.locator('#nav-servers').isVisible(), false, 'a user is offered the view');
  assert.equal(await banner.isVisible(), false, 'a user sees the banner');
  await page.goto(`${base}/console/servers`);
  await page.getByRole('heading', { name: 'Held mail' }).waitFor();
  await page.getByText('The sending servers are for administrators.').waitFor();
  assert.equal(await page.locator('#servers').isVisible(), false);
  assert.ok(!(await page.content()).includes(external), 'a user\'s page names a server');
  const refused = await apiGet('/api/servers');
  assert.equal(refused.status, 403, JSON.stringify(refused));
  said.user_status = refused.status;

  assert.deepEqual(problems, []);
  console.log(`servers: ${JSON.stringify(said)}`);
  console.log('servers: all steps passed');
} finally {
  await browser.close();
}
