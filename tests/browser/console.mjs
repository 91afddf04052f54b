// Drives the Portcullis console in Debian's chromium (playwright-core, no
// browser of its own). Run by crates/portcullis/tests/console.rs, which starts
// the gateway, holds the mail and checks the released copy at its sink.
//
// Settings come from the environment:
//   CONSOLE_URL        http://127.0.0.1:PORT
//   CONSOLE_PASSWORD   every account's password
//   CONSOLE_ADMIN      the admin's name
//   CONSOLE_USER       a user's name (CONSOLE_USER_ADDRESS: their address)
//   CONSOLE_SYMBOL     the rule that held the mail
//   CONSOLE_RELEASE    subject of the message the admin releases
//   CONSOLE_OWN        subject of the user's own held message (hostile markup)
//   CONSOLE_OTHER      subject of another user's held message
//   CONSOLE_OTHER_ID   that message's id
//   CONSOLE_UNRELATED  subject held by another rule (the filter must hide it)
//   CONSOLE_SHOTS      folder for console-list.png and console-details.png
//   CHROMIUM           the browser (default /usr/bin/chromium)
import { env, launch, step } from './common.mjs';
import assert from 'node:assert/strict';
import path from 'node:path';

const base = env('CONSOLE_URL');
const password = env('CONSOLE_PASSWORD');
const symbol = env('CONSOLE_SYMBOL');
const releaseSubject = env('CONSOLE_RELEASE');
const ownSubject = env('CONSOLE_OWN');
const otherSubject = env('CONSOLE_OTHER');
const unrelated = env('CONSOLE_UNRELATED');
const shots = env('CONSOLE_SHOTS');

const browser = await launch();
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  // Anything the page's policy blocks, any script error and any dialog (an
  // injected alert) fails the run.
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

  step('the root redirects to the console, which asks to sign in');
  const first = await page.goto(`${base}/`);
  assert.equal(new URL(page.url()).pathname, '/console');
  const csp = first.headers()['content-security-policy'] || '';
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /default-src 'none'/);
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();

  step('a wrong password is refused plainly');
  await page.getByLabel('Name').fill(env('CONSOLE_ADMIN'));
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Wrong name or password.').waitFor();

  step('the admin signs in');
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Held mail' }).waitFor();
  await page.getByText(`${env('CONSOLE_ADMIN')} (admin)`).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'portcullis_session');
  assert.ok(session, 'a session cookie');
  assert.ok(session.httpOnly && session.secure && session.sameSite === 'Strict', JSON.stringify(session));

  step('filter by the rule that held the mail');
  await page.getByLabel('Symbol or rule').fill(symbol);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL((u) => u.searchParams.get('symbol') === symbol);
  const rows = page.locator('#entries-body tr');
  await rows.filter({ hasText: releaseSubject }).first().waitFor();
  await rows.filter({ hasText: ownSubject }).first().waitFor();
  assert.equal(await rows.filter({ hasText: unrelated }).count(), 0, 'the filter lets another rule\'s mail through');
  assert.equal(await page.locator('#entries-body .badge').first().textContent(), 'held');

  step('a hostile subject is shown as text');
  assert.equal(await page.locator('#main img').count(), 0, 'markup from a subject became an element');
  assert.ok((await page.locator('#entries-body').textContent()).includes('<img src=x onerror=alert(1)>'));
  await page.screenshot({ path: path.join(shots, 'console-list.png'), fullPage: true });

  step('the bulk dry run counts before anything happens');
  await page.getByRole('button', { name: 'Release all that match' }).click();
  await page.getByText(/This would release \d+ recipients? of \d+ messages?/).waitFor();
  await page.getByRole('button', { name: 'Cancel' }).click();

  step('open the message and read why it was held');
  await page.getByRole('link', { name: releaseSubject }).click();
  await page.getByRole('heading', { name: releaseSubject }).waitFor();
  const verdict = page.locator('#verdict-body');
  await verdict.locator('td.symbol', { hasText: symbol }).waitFor();
  assert.ok((await verdict.textContent()).includes('9.00'));
  await page.locator('#preview-text').waitFor();
  assert.match(await page.locator('#preview-text').textContent(), /please release me/);
  const links = await page.locator('#preview-links').textContent();
  assert.ok(links.includes('https://example.test/track?id=1'), links);
  assert.equal(await page.locator('#preview a').count(), 0, 'a link of the message is clickable');
  await page.locator('#attachments-body td', { hasText: 'notes.txt' }).waitFor();
  assert.equal(await page.locator('#headers-body th', { hasText: 'Subject' }).count(), 1);
  await page.screenshot({ path: path.join(shots, 'console-details.png'), fullPage: true });

  step('release it and watch it arrive');
  await page.getByRole('button', { name: 'Release', exact: true }).click();
  await page.getByText(/Released to .*; the copy is queued as/).waitFor();
  const status = page.locator('#recipients-body .badge').first();
  const until = Date.now() + 60_000;
  while ((await status.textContent()) !== 'delivered') {
    assert.ok(Date.now() < until, `still ${await status.textContent()} after a minute`);
    await page.waitForTimeout(500);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.getByRole('heading', { name: releaseSubject }).waitFor();
  }

  step('the admin signs out');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();

  step('a user sees only their own held mail');
  await page.getByLabel('Name').fill(env('CONSOLE_USER'));
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Held mail' }).waitFor();
  await page.getByText(`${env('CONSOLE_USER')} (user)`).waitFor();
  await page.locator('#list-summary', { hasText: /shown, newest first/ }).waitFor();
  await rows.filter({ hasText: ownSubject }).first().waitFor();
  const recipients = await page.locator('#entries-body td.rcpt').allTextContents();
  assert.ok(recipients.length > 0);
  for (const r of recipients) assert.equal(r, env('CONSOLE_USER_ADDRESS'));
  const html = await page.content();
  for (const foreign of [otherSubject, releaseSubject]) {
    assert.ok(!html.includes(foreign), `the user's page shows "${foreign}"`);
  }
  assert.equal(await page.locator('#bulk').isVisible(), false, 'a user is offered bulk actions');
  assert.equal(await page.locator('#main img').count(), 0);

  step('another user\'s message does not exist for them');
  await page.goto(`${base}/console/message/${encodeURIComponent(env('CONSOLE_OTHER_ID'))}`);
  await page.getByRole('heading', { name: 'No such held message' }).waitFor();
  assert.ok(!(await page.content()).includes(otherSubject));

  step('their own message offers release, not delete');
  await page.goto(`${base}/console`);
  await page.getByRole('link', { name: ownSubject }).click();
  await page.locator('#actions button', { hasText: 'Refresh' }).waitFor();
  const offered = await page.locator('#actions button').allTextContents();
  assert.ok(offered.includes('Release'), offered.join(', '));
  assert.ok(!offered.includes('Delete'), offered.join(', '));
  assert.equal(await page.locator('#main img').count(), 0);

  assert.deepEqual(problems, []);
  console.log('console: all steps passed');
} finally {
  await browser.close();
}
