// The Portcullis console. It talks only to the JSON API with fetch() and puts
// every string it receives into the page as text (textContent): the subjects,
// senders, headers and bodies of held mail are hostile.

const PAGE = 50;
const STATUSES = ['held', 'requested', 'approved', 'denied', 'releasing', 'released',
  'delivered', 'failed', 'deleted', 'expired'];
// Statuses from which a copy can still be released, requested or deleted.
const LIVE = ['held', 'requested', 'approved', 'denied'];
const FILTERS = ['status', 'category', 'symbol', 'sender', 'recipient', 'since', 'q', 'live'];

const state = {
  me: null, // {name, role, addresses}
  csrf: sessionStorage.getItem('portcullis.csrf'),
  limit: PAGE,
  listed: [], // entries shown in the list
  picked: new Set(), // "message\nrecipient" keys chosen in the list
  pending: null, // the confirmation waiting for an answer
  lastList: '', // the list's query, for the way back from a message
  pauseKey: null, // the sending server whose pause is being asked for
  pauseAllowance: null, // days a server may be paused in any 365
};

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function show(section) {
  for (const id of ['signin', 'list', 'details', 'servers']) $(id).hidden = id !== section;
  for (const [id, view] of [['nav-held', 'list'], ['nav-servers', 'servers']]) {
    if (section === view) $(id).setAttribute('aria-current', 'page');
    else $(id).removeAttribute('aria-current');
  }
}

function notice(text, isError) {
  const n = $('notice');
  n.textContent = text || '';
  n.hidden = !text;
  n.classList.toggle('error', Boolean(isError));
}

class ApiError extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

// Calls the API; resolves to {status, data}. A 401 outside sign-in means the
// session is gone: back to the sign-in form.
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, `the gateway did not answer (${e.message})`);
  }
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (r.status === 401 && path !== '/api/login') {
    signedOut('Your session has ended: sign in again.');
    throw new ApiError(401, 'not signed in');
  }
  return { status: r.status, data };
}

// The reason an answer gives, or its status.
function reason(a) {
  const said = a.data && typeof a.data.error === 'string' ? a.data.error : '';
  const base = a.status === 404 ? 'not found (404)'
    : a.status === 405 ? 'not offered by this gateway (405)'
      : `HTTP ${a.status}`;
  return said ? `${said} (HTTP ${a.status})` : base;
}

function fmtTime(ms) {
  if (typeof ms !== 'number') return '';
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())} UTC`;
}

function fmtSize(n) {
  if (typeof n !== 'number') return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function badge(status) {
  const known = STATUSES.includes(status) ? status : 'other';
  return el('span', status, `badge status-${known}`);
}

function staff() {
  return state.me && (state.me.role === 'admin' || state.me.role === 'helpdesk');
}

// ---- signing in and out ----

function signedOut(message) {
  state.me = null;
  state.csrf = null;
  sessionStorage.removeItem('portcullis.csrf');
  // Nothing of the last viewer's mail stays in the page.
  state.listed = [];
  state.picked.clear();
  closeConfirm();
  for (const id of ['entries-body', 'envelope', 'verdict-body', 'recipients-body', 'actions',
    'headers-body', 'preview-links', 'attachments-body', 'servers-body']) $(id).replaceChildren();
  for (const id of ['list-summary', 'details-title', 'verdict-summary', 'preview-text',
    'action-result', 'servers-summary', 'servers-result', 'own-banner-text']) $(id).textContent = '';
  closePause();
  $('own-banner').hidden = true;
  $('servers-result').hidden = true;
  $('nav-held').hidden = true;
  $('nav-servers').hidden = true;
  fillForm({});
  $('who').hidden = true;
  $('signout').hidden = true;
  show('signin');
  notice(message || '', Boolean(message));
  $('signin-name').focus();
}

function signedIn(me) {
  state.me = { name: me.name, role: me.role, addresses: me.addresses || [] };
  $('who').textContent = `${me.name} (${me.role})`;
  $('who').hidden = false;
  $('signout').hidden = false;
  $('nav-held').hidden = false;
  $('nav-servers').hidden = me.role !== 'admin';
}

async function signIn(ev) {
  ev.preventDefault();
  const err = $('signin-error');
  err.hidden = true;
  const name = $('signin-name').value.trim();
  const password = $('signin-password').value;
  if (!name || !password) {
    err.textContent = 'Give your name and password.';
    err.hidden = false;
    return;
  }
  let a;
  try {
    a = await api('POST', '/api/login', { name, password });
  } catch (e) {
    err.textContent = e.message;
    err.hidden = false;
    return;
  }
  $('signin-password').value = '';
  if (a.status !== 200 || !a.data || typeof a.data.csrf !== 'string') {
    err.textContent = a.status === 401 ? 'Wrong name or password.'
      : a.status === 429 ? `Too many failed sign-ins. ${reason(a)}` : reason(a);
    err.hidden = false;
    return;
  }
  state.csrf = a.data.csrf;
  sessionStorage.setItem('portcullis.csrf', a.data.csrf);
  signedIn(a.data);
  notice('');
  route();
}

async function signOut() {
  try {
    await api('POST', '/api/logout');
  } catch {
    // Signed out either way.
  }
  history.pushState(null, '', '/console');
  signedOut('');
}

// ---- navigation ----

function go(url) {
  history.pushState(null, '', url);
  route();
}

function route() {
  if (!state.me) {
    show('signin');
    return;
  }
  const admin = state.me.role === 'admin';
  // Every admin page warns when our own servers are out of date.
  if (admin) ownBanner();
  const m = location.pathname.match(/^\/console\/message\/([^/]+)$/);
  if (m) {
    details(decodeURIComponent(m[1]));
  } else if (location.pathname === '/console/servers') {
    if (admin) {
      servers(new URLSearchParams(location.search), true);
    } else {
      history.replaceState(null, '', '/console');
      list(new URLSearchParams(), true);
      notice('The sending servers are for administrators.', true);
    }
  } else {
    list(new URLSearchParams(location.search), true);
  }
}

function messageUrl(id) {
  return `/console/message/${encodeURIComponent(id)}`;
}

// ---- the list ----

function filtersFrom(params) {
  const f = {};
  for (const k of FILTERS) {
    const v = params.get(k);
    if (v) f[k] = v;
  }
  return f;
}

function fillForm(f) {
  for (const k of FILTERS) {
    const input = $(`f-${k}`);
    if (input.type === 'checkbox') input.checked = f[k] === 'true';
    else input.value = f[k] || '';
  }
}

function formFilters() {
  const f = {};
  for (const k of FILTERS) {
    const input = $(`f-${k}`);
    if (input.type === 'checkbox') {
      if (input.checked) f[k] = 'true';
    } else if (input.value.trim()) {
      f[k] = input.value.trim();
    }
  }
  return f;
}

async function list(params, fresh) {
  show('list');
  const f = filtersFrom(params);
  state.lastList = location.search;
  if (fresh) {
    notice('');
    state.limit = PAGE;
    state.picked.clear();
    fillForm(f);
    $('list-title').focus();
  }
  const admin = state.me.role === 'admin';
  $('bulk').hidden = !admin;
  $('pick-head').hidden = !admin;
  const q = new URLSearchParams(f);
  q.set('limit', String(state.limit));
  $('list-summary').textContent = 'Loading…';
  let a;
  try {
    a = await api('GET', `/api/quarantine?${q}`);
  } catch (e) {
    $('list-summary').textContent = e.message;
    return;
  }
  if (a.status !== 200) {
    $('list-summary').textContent = `The list could not be shown: ${reason(a)}`;
    $('entries-body').replaceChildren();
    $('more').hidden = true;
    return;
  }
  const entries = Array.isArray(a.data.entries) ? a.data.entries : [];
  state.listed = entries;
  renderEntries(entries, admin);
  $('list-summary').textContent = entries.length === 0 ? 'Nothing held matches.'
    : `${entries.length} held ${entries.length === 1 ? 'copy' : 'copies'} shown, newest first.`;
  $('more').hidden = entries.length < state.limit;
  updatePicked();
}

function renderEntries(entries, admin) {
  const rows = entries.map((e) => {
    const tr = el('tr');
    tr.dataset.message = e.message;
    if (admin) {
      const td = el('td', null, 'pick');
      const box = el('input');
      box.type = 'checkbox';
      const key = `${e.message}\n${e.recipient}`;
      box.checked = state.picked.has(key);
      box.setAttribute('aria-label', `Select ${e.recipient}: ${e.subject || '(no subject)'}`);
      box.addEventListener('change', () => {
        if (box.checked) state.picked.add(key);
        else state.picked.delete(key);
        updatePicked();
      });
      td.append(box);
      tr.append(td);
    }
    tr.append(el('td', fmtTime(e.received_at), 'time'));
    const st = el('td');
    st.append(badge(e.status));
    tr.append(st);
    tr.append(el('td', e.category || ''));
    tr.append(el('td', typeof e.score === 'number' ? e.score.toFixed(1) : '', 'num'));
    const sender = el('td', e.sender || '<>', 'addr');
    sender.title = sender.textContent;
    const rcpt = el('td', e.recipient, 'addr rcpt');
    rcpt.title = rcpt.textContent;
    tr.append(sender, rcpt);
    const subj = el('td', null, 'subject');
    const link = el('a', e.subject || '(no subject)');
    link.href = messageUrl(e.message);
    link.addEventListener('click', (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
      ev.preventDefault();
      go(link.href);
    });
    subj.append(link);
    tr.append(subj);
    tr.append(el('td', fmtTime(e.expires_at), 'time'));
    return tr;
  });
  $('entries-body').replaceChildren(...rows);
}

function updatePicked() {
  const n = state.picked.size;
  const msgs = new Set([...state.picked].map((k) => k.split('\n')[0])).size;
  $('bulk-count').textContent = n === 0 ? 'None selected'
    : `${n} ${n === 1 ? 'recipient' : 'recipients'} of ${msgs} ${msgs === 1 ? 'message' : 'messages'} selected`;
  $('bulk-release-selected').disabled = n === 0;
  $('bulk-delete-selected').disabled = n === 0;
  const boxes = [...$('entries-body').querySelectorAll('input[type=checkbox]')];
  $('pick-all').checked = boxes.length > 0 && boxes.every((b) => b.checked);
}

function ask(text, onYes) {
  state.pending = onYes;
  $('confirm-text').textContent = text;
  $('confirm').hidden = false;
  $('confirm-yes').focus();
}

function closeConfirm() {
  state.pending = null;
  $('confirm').hidden = true;
}

// The selected recipients, grouped by message.
function pickedByMessage() {
  const by = new Map();
  for (const k of state.picked) {
    const [id, rcpt] = k.split('\n');
    if (!by.has(id)) by.set(id, []);
    by.get(id).push(rcpt);
  }
  return by;
}

function actOnSelected(action) {
  const by = pickedByMessage();
  const n = state.picked.size;
  const verb = action === 'release' ? 'Release' : 'Delete';
  ask(`${verb} ${n} ${n === 1 ? 'recipient' : 'recipients'} of ${by.size} ${by.size === 1 ? 'message' : 'messages'}?`, async () => {
    let done = 0;
    const failed = [];
    for (const [id, recipients] of by) {
      const a = await api('POST', `/api/quarantine/${encodeURIComponent(id)}/${action}`, { recipients });
      if (a.status === 200) done += recipients.length;
      else failed.push(`${id}: ${reason(a)}`);
    }
    const past = action === 'release' ? 'Released' : 'Deleted';
    notice(`${past} ${done} ${done === 1 ? 'recipient' : 'recipients'}.` +
      (failed.length ? ` Not done: ${failed.join('; ')}` : ''), failed.length > 0);
    state.picked.clear();
    list(new URLSearchParams(location.search), false);
  });
}

// The list's filter as the bulk endpoint takes it.
function bulkFilter() {
  const f = filtersFrom(new URLSearchParams(location.search));
  const out = {};
  for (const k of ['status', 'category', 'symbol', 'sender', 'recipient', 'since']) {
    if (f[k]) out[k] = f[k];
  }
  if (f.q) out.text = f.q;
  return out;
}

async function actOnFilter(action) {
  const filter = bulkFilter();
  let a;
  try {
    a = await api('POST', '/api/quarantine/bulk', { action, dry_run: true, filter });
  } catch (e) {
    notice(e.message, true);
    return;
  }
  if (a.status !== 200) {
    notice(`Could not count what the filter selects: ${reason(a)}`, true);
    return;
  }
  const { messages, recipients } = a.data;
  const verb = action === 'release' ? 'release' : 'delete';
  if (!recipients) {
    notice(`Nothing to ${verb}: the filter selects nothing that is still held.`);
    return;
  }
  const what = Object.keys(filter).length ? 'that match the filter' : 'held, with no filter at all';
  ask(`This would ${verb} ${recipients} ${recipients === 1 ? 'recipient' : 'recipients'} of ${messages} ${messages === 1 ? 'message' : 'messages'} ${what}. Go ahead?`, async () => {
    const r = await api('POST', '/api/quarantine/bulk', { action, dry_run: false, filter });
    if (r.status !== 200) {
      notice(`The bulk action failed: ${reason(r)}`, true);
    } else {
      const failed = Object.keys(r.data.failed || {}).length;
      notice(`${action === 'release' ? 'Released' : 'Deleted'} ${r.data.done}, skipped ${r.data.skipped} ` +
        `(done by someone else meanwhile), failed ${failed}.`, failed > 0);
    }
    list(new URLSearchParams(location.search), false);
  });
}

// ---- one message ----

function fact(dl, name, value) {
  dl.append(el('dt', name), el('dd', value === undefined || value === null || value === '' ? '—' : value));
}

async function details(id) {
  show('details');
  notice('');
  $('details-title').textContent = 'Loading…';
  for (const b of ['envelope', 'verdict-body', 'recipients-body', 'actions', 'headers-body',
    'preview-links', 'attachments-body']) $(b).replaceChildren();
  $('verdict-summary').textContent = '';
  $('action-result').hidden = true;
  $('preview').hidden = true;
  $('preview-none').hidden = true;
  let a;
  try {
    a = await api('GET', `/api/quarantine/${encodeURIComponent(id)}`);
  } catch (e) {
    $('details-title').textContent = e.message;
    return;
  }
  if (a.status !== 200) {
    $('details-title').textContent = a.status === 404 ? 'No such held message' : `Could not load it: ${reason(a)}`;
    $('details-title').focus();
    return;
  }
  renderDetails(id, a.data);
  $('details-title').focus();
  preview(id);
}

function renderDetails(id, data) {
  const held = data.held || null;
  const entries = Array.isArray(data.entries) ? data.entries : [];
  const first = entries[0] || {};
  const subject = (held && held.subject) || first.subject || '(no subject)';
  $('details-title').textContent = subject;

  const dl = $('envelope');
  fact(dl, 'Id', id);
  fact(dl, 'Received', fmtTime(held ? held.received_at : first.received_at));
  fact(dl, 'From (envelope)', held ? (held.envelope && held.envelope.mail_from) || '<>' : first.sender);
  fact(dl, 'To (envelope)', entries.map((e) => e.recipient).join(', '));
  if (held) {
    fact(dl, 'Client', held.client_ip);
    fact(dl, 'Message-ID', held.message_id);
    fact(dl, 'Size', fmtSize(held.size));
    fact(dl, 'Expires', fmtTime(held.expires_at));
  } else {
    fact(dl, 'Expires', fmtTime(first.expires_at));
  }

  const v = held && held.verdict;
  if (v) {
    $('verdict-summary').textContent =
      `Score ${Number(v.score).toFixed(2)}, category ${v.category}, action ${v.action}.`;
    const symbols = Array.isArray(v.symbols) ? [...v.symbols] : [];
    symbols.sort((x, y) => Math.abs(y.score) - Math.abs(x.score));
    $('verdict-body').replaceChildren(...symbols.map((s) => {
      const tr = el('tr');
      tr.append(el('td', s.name, 'symbol'), el('td', Number(s.score).toFixed(2), 'num'), el('td', s.detail));
      return tr;
    }));
  } else {
    $('verdict-summary').textContent = first.reason
      ? `The stored message is gone; the reason recorded: ${first.reason}` : 'The stored message is gone.';
  }

  const may = new Map((data.permissions || []).map((p) => [p.recipient.toLowerCase(), p.may]));
  $('recipients-body').replaceChildren(...entries.map((e) => {
    const tr = el('tr');
    const pick = el('td', null, 'pick');
    const box = el('input');
    box.type = 'checkbox';
    box.value = e.recipient;
    box.className = 'rcpt-pick';
    box.disabled = !LIVE.includes(e.status);
    box.setAttribute('aria-label', `Choose ${e.recipient}`);
    pick.append(box);
    const st = el('td');
    st.append(badge(e.status));
    const allowed = may.get(e.recipient.toLowerCase()) || 'none';
    const text = !LIVE.includes(e.status) ? 'nothing more'
      : allowed === 'release' ? 'release' : allowed === 'request' ? 'request release' : 'nothing';
    tr.append(pick, el('td', e.recipient, 'addr'), st, el('td', text));
    return tr;
  }));
  actions(id, entries, may);
}

function chosenRecipients() {
  const boxes = [...document.querySelectorAll('#recipients-body input.rcpt-pick:checked')];
  return boxes.length ? boxes.map((b) => b.value) : null;
}

function actions(id, entries, may) {
  const live = entries.filter((e) => LIVE.includes(e.status));
  const canRelease = live.some((e) => may.get(e.recipient.toLowerCase()) === 'release');
  const canRequest = live.some((e) => e.status === 'held' && may.get(e.recipient.toLowerCase()) === 'request');
  const requested = live.some((e) => e.status === 'requested');
  const role = state.me.role;
  const base = `/api/quarantine/${encodeURIComponent(id)}`;
  const bar = $('actions');
  const button = (label, cls, run) => {
    const b = el('button', label, cls);
    b.type = 'button';
    b.addEventListener('click', async () => {
      for (const other of bar.querySelectorAll('button')) other.disabled = true;
      try {
        await run();
      } finally {
        for (const other of bar.querySelectorAll('button')) other.disabled = false;
      }
    });
    bar.append(b);
  };
  // Runs one action; shows the outcome; reloads the details on success.
  const act = async (what, path, body, success) => {
    let a;
    try {
      a = await api('POST', path, body);
    } catch (e) {
      result(`${what}: ${e.message}`, true);
      return;
    }
    if (a.status === 200) {
      await details(id);
      result(success(a.data), false);
    } else {
      result(`${what} was not done: ${reason(a)}`, true);
    }
  };
  const chosen = () => {
    const r = chosenRecipients();
    return r ? { recipients: r } : undefined;
  };
  const names = (l) => (Array.isArray(l) && l.length ? l.join(', ') : 'nobody');

  if (canRelease) {
    button('Release', 'primary', () => act('Release', `${base}/release`, chosen(),
      (d) => `Released to ${names(d.recipients)}; the copy is queued as ${d.release_id}.`));
    button('Release and allow sender', '', () => act('Release and allow sender', `${base}/release`,
      { ...(chosen() || {}), allow_sender: true },
      (d) => `Released to ${names(d.recipients)}; ` + (Array.isArray(d.allowed_senders) && d.allowed_senders.length
        ? `${d.allowed_senders.join(', ')} is allowed for them from now on.` : 'no sender to allow (the null sender).')));
  }
  if (canRequest) {
    button('Request release', 'primary', () => act('Request', `${base}/request`, chosen(),
      (d) => `Release requested for ${names(d.requested)}; an administrator decides.`));
  }
  if ((role === 'admin' || role === 'helpdesk') && requested) {
    button('Approve', '', () => act('Approve', `${base}/approve`, chosen(),
      (d) => `Approved for ${names(d.decided)}; released to ${names(d.released && d.released.recipients)}.`));
    button('Deny', '', () => act('Deny', `${base}/deny`, chosen(),
      (d) => `Denied for ${names(d.decided)}.`));
  }
  if (staff()) {
    button('Report as false positive', '', () => act('Report as false positive', `${base}/report`,
      { as: 'ham' }, () => 'Reported as a false positive: the classifier learned it as wanted mail.'));
    button('Report as missed spam', '', () => act('Report as missed spam', `${base}/report`,
      { as: 'spam' }, () => 'Reported as missed spam: the classifier learned it as spam.'));
  }
  // The sender, as the list knows it; the null sender cannot be blocked.
  const sender = entries.length ? entries[0].sender : '';
  if (role === 'user' && sender) {
    button('Block sender', '', () => act('Block sender', '/api/senders',
      { sender, rule: 'block' },
      (d) => `${sender} is blocked for ${names(d.recipients)}: their mail is refused from now on.`));
  }
  if (role === 'admin' && live.length) {
    button('Re-scan, release if it passes', '', () => act('Re-scan', '/api/quarantine/bulk',
      { action: 'rescan', release: true, filter: { message: id } },
      (d) => (d.passing ? `It passes the current checks now; released to ${d.released} recipient(s).`
        : 'It still fails the current checks; it stays held.')));
    button('Delete', 'danger', () => act('Delete', `${base}/delete`, chosen(),
      (d) => `Deleted for ${names(d.deleted)}.`));
  }
  button('Refresh', '', () => details(id));
  $('actions-hint').hidden = bar.children.length <= 1;
}

function result(text, isError) {
  const r = $('action-result');
  r.textContent = text;
  r.hidden = false;
  r.classList.toggle('error', isError);
}

async function preview(id) {
  let a;
  try {
    a = await api('GET', `/api/quarantine/${encodeURIComponent(id)}/preview`);
  } catch {
    a = { status: 0, data: null };
  }
  if (a.status !== 200 || !a.data || typeof a.data !== 'object') {
    $('preview-none').textContent = a.status === 404 || a.status === 405 ? 'No preview.'
      : `No preview: ${reason(a)}`;
    $('preview-none').hidden = false;
    return;
  }
  const p = a.data;
  const headers = Array.isArray(p.headers) ? p.headers : [];
  $('headers-body').replaceChildren(...headers.map((h) => {
    const tr = el('tr');
    tr.append(el('th', Array.isArray(h) ? h[0] : '', 'hname'), el('td', Array.isArray(h) ? h[1] : '', 'hvalue'));
    return tr;
  }));
  $('preview-text').textContent = typeof p.text === 'string' ? p.text : '';
  $('preview-truncated').hidden = !p.truncated;
  const links = Array.isArray(p.links) ? p.links : [];
  $('preview-links').replaceChildren(...(links.length ? links.map((l) => {
    const li = el('li');
    li.append(el('code', l));
    return li;
  }) : [el('li', 'none')]));
  const files = Array.isArray(p.attachments) ? p.attachments : [];
  $('attachments-body').replaceChildren(...(files.length ? files.map((f) => {
    const tr = el('tr');
    tr.append(el('td', f.name || '(no name)'), el('td', f.content_type), el('td', fmtSize(f.size), 'num'),
      el('td', f.sha256, 'hash'));
    return tr;
  }) : [(() => {
    const tr = el('tr');
    const td = el('td', 'none');
    td.colSpan = 4;
    tr.append(td);
    return tr;
  })()]));
  $('preview').hidden = false;
}

// ---- sending servers (admin) ----

const SERVER_STATUSES = ['current', 'outdated', 'vulnerable', 'unsupported'];

function fmtDay(ms) {
  return typeof ms === 'number' ? fmtTime(ms).slice(0, 10) : '';
}

function software(s) {
  const version = `${s.product || ''} ${s.version || ''}`.trim();
  return s.release ? `${s.release} (${version})` : version;
}

// The warning about our own out-of-date servers, on every admin page.
async function ownBanner() {
  let a;
  try {
    a = await api('GET', '/api/servers?own=true');
  } catch {
    return;
  }
  if (!state.me || state.me.role !== 'admin') return;
  const own = a.status === 200 && a.data && Array.isArray(a.data.servers)
    ? a.data.servers.filter((s) => s.own && s.status !== 'current') : [];
  const n = a.status === 200 && a.data && typeof a.data.own_out_of_date === 'number'
    ? a.data.own_out_of_date : own.length;
  if (!n) {
    $('own-banner').hidden = true;
    $('own-banner-text').textContent = '';
    return;
  }
  const names = own.slice(0, 10).map((s) => `${s.host || s.key} (${software(s)}, ${s.status})`);
  if (own.length > 10) names.push(`and ${own.length - 10} more`);
  $('own-banner-text').textContent =
    `${n} of your own mail servers ${n === 1 ? 'runs' : 'run'} out-of-date software: ${names.join('; ')}; ` +
    'large receivers such as Exchange Online throttle and block such servers.';
  $('own-banner').hidden = false;
}

function serverFilters(params) {
  const f = {};
  const status = params.get('status');
  if (status && SERVER_STATUSES.includes(status)) f.status = status;
  const own = params.get('own');
  if (own === 'true' || own === 'false') f.own = own;
  return f;
}

function serverResult(text, isError) {
  const r = $('servers-result');
  r.textContent = text;
  r.hidden = !text;
  r.classList.toggle('error', Boolean(isError));
}

function closePause() {
  state.pauseKey = null;
  $('pause-box').hidden = true;
  $('pause-server').textContent = '';
}

async function servers(params, fresh) {
  show('servers');
  const f = serverFilters(params);
  if (fresh) {
    notice('');
    closePause();
    serverResult('');
    $('s-status').value = f.status || '';
    $('s-own').value = f.own || '';
    $('servers-title').focus();
  }
  $('servers-summary').textContent = 'Loading…';
  let a;
  try {
    a = await api('GET', `/api/servers?${new URLSearchParams(f)}`);
  } catch (e) {
    $('servers-summary').textContent = e.message;
    return;
  }
  if (a.status !== 200 || !a.data) {
    $('servers-summary').textContent = `The sending servers could not be shown: ${reason(a)}`;
    $('servers-body').replaceChildren();
    return;
  }
  const list = Array.isArray(a.data.servers) ? a.data.servers : [];
  state.pauseAllowance = a.data.pause_allowance_days;
  renderServers(list);
  const mode = a.data.mode === 'report'
    ? ' Report-only mode: nothing is throttled or blocked.' : '';
  $('servers-summary').textContent = (list.length === 0 ? 'No sending server matches.'
    : `${list.length} ${list.length === 1 ? 'server' : 'servers'} shown, longest out of date first.`) + mode;
}

function cell(text, cls, detail) {
  const td = el('td', text, cls);
  if (detail) td.append(el('span', detail, 'detail'));
  return td;
}

function renderServers(list) {
  $('servers-body').replaceChildren(...list.map((s) => {
    const tr = el('tr');
    tr.dataset.key = s.key;
    const key = cell(s.key, 'key');
    key.title = s.key;
    if (s.own) key.append(el('span', 'own', 'tag'));
    const st = el('td', null, 'status');
    const known = SERVER_STATUSES.includes(s.status) ? s.status : 'other';
    st.append(el('span', s.status, `badge server-${known}`));
    if (s.reason) st.append(el('span', s.reason, 'detail'));
    let stageNote = '';
    if (s.stage && s.own) stageNote = 'own server: not enforced';
    else if (s.stage && !s.enforced) stageNote = 'not the connecting server: not enforced';
    else if (s.stage && s.enforced !== s.stage) stageNote = `acting as ${s.enforced}`;
    const held = [];
    if (typeof s.paused_until === 'number') held.push(`paused until ${fmtDay(s.paused_until)}`);
    if (s.exempt) held.push('exempt');
    tr.append(
      key,
      cell(software(s), 'software', s.recommended ? `install ${s.recommended}` : ''),
      st,
      cell(typeof s.first_detected === 'number' ? fmtDay(s.first_detected) : '—', 'time'),
      lastSeen(s),
      cell(String(s.messages), 'num'),
      cell(s.stage || '—', 'stage', stageNote),
      cell(s.next_stage && !s.own ? s.next_stage : '—', 'next',
        s.next_stage && !s.own ? `on ${fmtDay(s.next_stage_at)}` : ''),
      cell(held.length ? held.join(', ') : '—', 'held'),
      serverActions(s),
    );
    return tr;
  }));
}

function lastSeen(s) {
  const td = cell(fmtDay(s.last_seen), 'time');
  td.title = fmtTime(s.last_seen);
  return td;
}

function serverActions(s) {
  const td = el('td', null, 'actions');
  if (s.own) {
    td.textContent = '—';
    return td;
  }
  const button = (label, run) => {
    const b = el('button', label);
    b.type = 'button';
    b.setAttribute('aria-label', `${label} ${s.key}`);
    b.addEventListener('click', run);
    td.append(b);
  };
  if (s.status !== 'current') {
    if (typeof s.paused_until === 'number') {
      button('Resume', () => serverChange('resume', { key: s.key },
        () => `Enforcement of ${s.key} resumed.`));
    } else {
      button('Pause', () => askPause(s.key));
    }
  }
  if (s.exempt) {
    button('Unexempt', () => serverChange('exempt', { key: s.key, exempt: false },
      () => `${s.key} is no longer exempt.`));
  } else {
    button('Exempt', () => serverChange('exempt', { key: s.key, exempt: true },
      () => `${s.key} is exempt: its mail is only reported.`));
  }
  return td;
}

function askPause(key) {
  state.pauseKey = key;
  $('pause-server').textContent = key;
  $('pause-hint').textContent = typeof state.pauseAllowance === 'number'
    ? `At most ${state.pauseAllowance} days in any 365.` : '';
  $('pause-box').hidden = false;
  $('pause-days').focus();
  $('pause-days').select();
}

async function confirmPause() {
  const key = state.pauseKey;
  if (!key) return;
  const days = Number($('pause-days').value);
  if (!Number.isInteger(days) || days < 1 || days > 366) {
    $('pause-hint').textContent = 'Give a whole number of days, 1 to 366.';
    return;
  }
  closePause();
  await serverChange('pause', { key, days },
    (d) => `Enforcement of ${key} paused for ${days} ${days === 1 ? 'day' : 'days'}, until ${fmtDay(d.paused_until)}.`);
}

// One change; shows the outcome and reloads the list.
async function serverChange(what, body, success) {
  for (const b of $('servers-body').querySelectorAll('button')) b.disabled = true;
  let a;
  try {
    a = await api('POST', `/api/servers/${what}`, body);
  } catch (e) {
    serverResult(e.message, true);
    return;
  }
  if (a.status === 200) serverResult(success(a.data || {}), false);
  else serverResult(`Not done: ${reason(a)}`, true);
  await servers(new URLSearchParams(location.search), false);
  ownBanner();
}

// ---- start ----

function wire() {
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', signOut);
  $('home').addEventListener('click', (ev) => {
    ev.preventDefault();
    go('/console');
  });
  $('back').addEventListener('click', (ev) => {
    ev.preventDefault();
    go(`/console${state.lastList}`);
  });
  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams(formFilters()).toString();
    go(q ? `/console?${q}` : '/console');
  });
  $('f-reset').addEventListener('click', () => go('/console'));
  $('more').addEventListener('click', () => {
    state.limit += PAGE;
    list(new URLSearchParams(location.search), false);
  });
  $('pick-all').addEventListener('change', () => {
    const on = $('pick-all').checked;
    for (const e of state.listed) {
      const key = `${e.message}\n${e.recipient}`;
      if (on) state.picked.add(key);
      else state.picked.delete(key);
    }
    for (const b of $('entries-body').querySelectorAll('input[type=checkbox]')) b.checked = on;
    updatePicked();
  });
  $('bulk-release-selected').addEventListener('click', () => actOnSelected('release'));
  $('bulk-delete-selected').addEventListener('click', () => actOnSelected('delete'));
  $('bulk-release-filter').addEventListener('click', () => actOnFilter('release'));
  $('bulk-delete-filter').addEventListener('click', () => actOnFilter('delete'));
  $('confirm-yes').addEventListener('click', async () => {
    const run = state.pending;
    closeConfirm();
    if (run) {
      try {
        await run();
      } catch (e) {
        notice(e.message, true);
      }
    }
  });
  $('confirm-no').addEventListener('click', closeConfirm);
  for (const id of ['nav-held', 'nav-servers', 'own-banner-link']) {
    $(id).addEventListener('click', (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
      ev.preventDefault();
      go($(id).getAttribute('href'));
    });
  }
  $('server-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = {};
    if ($('s-status').value) f.status = $('s-status').value;
    if ($('s-own').value) f.own = $('s-own').value;
    const q = new URLSearchParams(f).toString();
    go(q ? `/console/servers?${q}` : '/console/servers');
  });
  $('s-reset').addEventListener('click', () => go('/console/servers'));
  $('pause-yes').addEventListener('click', confirmPause);
  $('pause-days').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') {
      ev.preventDefault();
      confirmPause();
    }
  });
  $('pause-no').addEventListener('click', closePause);
  window.addEventListener('popstate', route);
}

async function start() {
  wire();
  if (!state.csrf) {
    signedOut('');
    return;
  }
  let a;
  try {
    a = await api('GET', '/api/me');
  } catch {
    return;
  }
  if (a.status !== 200 || !a.data) {
    signedOut('');
    return;
  }
  signedIn(a.data);
  route();
}

start();
