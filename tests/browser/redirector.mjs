// Follows secure links through the click-time redirector in Debian's chromium
// (playwright-core, no browser of its own). Run by
// crates/portcullis/tests/redirector_browser.rs, which starts the gateway and
// the local target server and signs the links.
//
// Settings come from the environment:
//   REDIRECTOR_URL     the gateway's HTTP listener, http://127.0.0.1:PORT
//   GOOD_PATH          /l/TOKEN of the link to the local target
//   TARGET_URL         the URL that link carries (served by the test)
//   TARGET_MARKER      text the target page shows
//   BLOCKED_PATH       /l/TOKEN of the link to a block-listed host
//   BLOCKED_HOST       that host (the block page names it)
//   BLOCKED_DOMAIN     the block list's entry (nothing under it is requested)
//   TAMPERED_PATH      /l/TOKEN with one character changed
//   CHROMIUM           the browser (default /usr/bin/chromium)
//
// Prints `redirector: ` and a JSON summary as its last line; exits non-zero on
// the first failed check.
import { env, launch, step } from './common.mjs';
import assert from 'node:assert/strict';

const base = env('REDIRECTOR_URL');
const gateway = new URL(base).origin;
const targetUrl = env('TARGET_URL');
const target = new URL(targetUrl).origin;
const marker = env('TARGET_MARKER');
const blockedHost = env('BLOCKED_HOST');
const blockedDomain = env('BLOCKED_DOMAIN');

const browser = await launch();
const summary = {};
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  // Every request the page makes, in order: what left the gateway is checked
  // after each step.
  let requests = [];
  page.on('request', (r) => requests.push({ method: r.method(), url: r.url() }));
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', async (d) => {
    problems.push(`a dialog opened: ${d.message()}`);
    await d.dismiss();
  });
  const origins = () => [...new Set(requests.map((r) => new URL(r.url).origin))];
  const text = async () => (await page.locator('body').textContent()) ?? '';

  step('a good link: the warning for its unusual port, Continue, then the target');
  requests = [];
  const first = await page.goto(`${base}${env('GOOD_PATH')}`);
  // The target is 127.0.0.1 on a port of its own, which the click-time checks
  // call an unusual port: the GET shows the warning and goes nowhere.
  assert.equal(first.status(), 200);
  await page.getByRole('heading', { name: 'This link may not be safe' }).waitFor();
  const warning = await text();
  assert.ok(warning.includes(targetUrl), `the warning does not show the URL: ${warning}`);
  assert.match(warning, /port/);
  assert.deepEqual(origins(), [gateway], 'the warning page let the browser go on');
  await Promise.all([
    page.waitForURL(targetUrl),
    page.getByRole('button', { name: 'Continue' }).click(),
  ]);
  await page.getByText(marker).waitFor();
  assert.equal(page.url(), targetUrl);
  const continued = requests.find((r) => r.method === 'POST');
  assert.ok(continued && continued.url.startsWith(gateway), JSON.stringify(requests));
  assert.ok(requests.some((r) => r.url === targetUrl && r.method === 'GET'), JSON.stringify(requests));
  summary.good = {
    warned: true,
    final_url: page.url(),
    marker: (await text()).includes(marker),
    requests: requests.map((r) => `${r.method} ${r.url}`),
  };

  step('a block-listed link: the block page, and the host is never asked');
  requests = [];
  const blocked = await page.goto(`${base}${env('BLOCKED_PATH')}`);
  assert.equal(blocked.status(), 403);
  await page.getByRole('heading', { name: 'This link is blocked' }).waitFor();
  const blockText = await text();
  assert.ok(blockText.includes(blockedHost), `the block page does not name ${blockedHost}: ${blockText}`);
  assert.equal(await page.locator('a').count(), 0, 'the block page links somewhere');
  // Give a late redirect (a refresh, a script) the chance to show itself.
  await page.waitForTimeout(500);
  assert.ok(page.url().startsWith(`${gateway}/l/`), page.url());
  const toBlocked = requests.filter((r) => {
    const h = new URL(r.url).hostname;
    return h === blockedDomain || h.endsWith(`.${blockedDomain}`);
  });
  assert.deepEqual(toBlocked, [], 'the browser went to the blocked host');
  assert.deepEqual(origins(), [gateway]);
  summary.blocked = {
    status: blocked.status(),
    names_host: true,
    final_url: page.url(),
    requests: requests.map((r) => `${r.method} ${r.url}`),
  };

  step('a tampered link: the error page, and nowhere else');
  requests = [];
  const tampered = await page.goto(`${base}${env('TAMPERED_PATH')}`);
  assert.equal(tampered.status(), 400);
  await page.getByRole('heading', { name: 'This link is not valid' }).waitFor();
  await page.waitForTimeout(500);
  assert.equal(page.url(), `${base}${env('TAMPERED_PATH')}`);
  assert.equal(await page.locator('a, form').count(), 0, 'the error page offers a way on');
  assert.ok(!(await text()).includes(target), 'the error page shows what the token claimed');
  assert.deepEqual(origins(), [gateway], 'a tampered link led away from the gateway');
  summary.tampered = {
    status: tampered.status(),
    final_url: page.url(),
    requests: requests.map((r) => `${r.method} ${r.url}`),
  };

  assert.deepEqual(problems, []);
  summary.passed = true;
  console.log(`redirector: ${JSON.stringify(summary)}`);
} finally {
  await browser.close();
}
