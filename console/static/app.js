// The airlock console: a client of the approvals API and the auditors'
// sessions API. Every value reaches the page as text, never as HTML.
(function () {
  'use strict';

  const body = document.body;
  const BASE = body.dataset.base || '';
  const CSRF = body.dataset.csrf || '';
  const PAGE = body.dataset.page;
  const PAGE_ID = body.dataset.id || '';
  const AUDITOR = body.dataset.auditor === 'true';
  const main = document.getElementById('main');
  const live = document.getElementById('live');
  const POLL_MS = 1500;

  // ---- DOM helpers -------------------------------------------------------

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function announce(msg) {
    live.textContent = '';
    setTimeout(() => { live.textContent = msg; }, 30);
  }

  function setMain(...nodes) {
    main.replaceChildren(...nodes);
  }

  // ---- API ---------------------------------------------------------------

  class APIError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(method, path, payload) {
    const headers = { 'Accept': 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') {
      headers['X-CSRF-Token'] = CSRF;
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(payload || {});
    }
    let r;
    try {
      r = await fetch(BASE + path, init);
    } catch (e) {
      throw new APIError(0, 'The console cannot reach airlock; retrying.');
    }
    if (r.status === 401) {
      location.assign(BASE + '/auth/login?next=' + encodeURIComponent(location.pathname + location.search));
      throw new APIError(401, 'Your sign-in ended; signing in again.');
    }
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new APIError(r.status, (j.error && j.error.message) || r.statusText);
    return j;
  }

  // ---- Time --------------------------------------------------------------

  const absFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
  const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

  function relative(d) {
    const s = Math.round((d.getTime() - Date.now()) / 1000);
    const a = Math.abs(s);
    if (a < 45) return relFmt.format(s, 'second');
    if (a < 2700) return relFmt.format(Math.round(s / 60), 'minute');
    if (a < 64800) return relFmt.format(Math.round(s / 3600), 'hour');
    return relFmt.format(Math.round(s / 86400), 'day');
  }

  function when(iso) {
    if (!iso) return h('span', { class: 'muted', text: '—' });
    const d = new Date(iso);
    return h('time', { datetime: iso, 'data-rel': '1' }, relative(d) + ' (' + absFmt.format(d) + ')');
  }

  function refreshTimes() {
    for (const t of document.querySelectorAll('time[data-rel]')) {
      const d = new Date(t.getAttribute('datetime'));
      t.textContent = relative(d) + ' (' + absFmt.format(d) + ')';
    }
  }
  setInterval(refreshTimes, 15000);

  // ---- Words -------------------------------------------------------------

  const SERVICES = {
    compute: 'Compute Engine', storage: 'Cloud Storage', cloudresourcemanager: 'Resource Manager',
    secretmanager: 'Secret Manager', iam: 'IAM', sqladmin: 'Cloud SQL', container: 'GKE', run: 'Cloud Run',
    bigquery: 'BigQuery', pubsub: 'Pub/Sub', cloudkms: 'Cloud KMS', logging: 'Cloud Logging',
    cloudfunctions: 'Cloud Functions', dns: 'Cloud DNS', serviceusage: 'Service Usage',
  };
  const VERBS = { insert: 'Create', create: 'Create', delete: 'Delete', patch: 'Update', update: 'Update', get: 'Read', list: 'List' };

  function singular(w) {
    if (/ies$/.test(w)) return w.slice(0, -3) + 'y';
    if (/(ss|sh|ch|x)es$/.test(w)) return w.slice(0, -2);
    if (/s$/.test(w)) return w.slice(0, -1);
    return w;
  }

  function spaced(w) {
    return w.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/\bIam\b/g, 'IAM').toLowerCase().replace(/\biam\b/g, 'IAM');
  }

  // operationWords turns compute.instances.setIamPolicy into
  // "Set IAM policy of a Compute Engine instance".
  function operationWords(op, method, url) {
    if (!op) return (method || '') + ' ' + (url || '');
    const parts = op.split('.');
    if (parts.length < 2) return op;
    const service = SERVICES[parts[0]] || parts[0];
    const verb = parts[parts.length - 1];
    const coll = parts.length > 2 ? singular(spaced(parts[parts.length - 2])) : '';
    let v = VERBS[verb] || spaced(verb);
    v = v.charAt(0).toUpperCase() + v.slice(1);
    if (!coll) return v + ' (' + service + ')';
    const article = /^[aeiouAEIOU]/.test(service) ? 'an' : 'a';
    const joiner = v.includes(' ') ? ' of ' : ' ';
    return v + joiner + article + ' ' + service + ' ' + coll;
  }

  function who(a) {
    const human = a.requester;
    if (a.actor) return [h('strong', { text: a.actor }), ' (agent) acting for ', h('strong', { text: human }), ' (the human behind it)'];
    return [h('strong', { text: human })];
  }

  const STATE_WORDS = { pending: 'Pending', approved: 'Approved', denied: 'Denied', expired: 'Expired' };
  const STATE_ICONS = { pending: '○', approved: '✓', denied: '✕', expired: '–' };

  function stateBadge(state) {
    return h('span', { class: 'state ' + state }, (STATE_ICONS[state] || '') + ' ' + (STATE_WORDS[state] || state));
  }

  function approvalsCount(a) {
    return a.votes.filter(v => v.decision === 'approve').length;
  }

  function votesLine(a) {
    const got = approvalsCount(a);
    const need = Math.max(0, a.min_approvals - got);
    let s = got + ' of ' + a.min_approvals + ' approval' + (a.min_approvals === 1 ? '' : 's');
    if (a.state === 'pending') s += need > 0 ? ' — ' + need + ' more needed' : '';
    return s;
  }

  function grantWords(a) {
    if (a.grant === 'window') return 'window: identical requests pass until the grant ends (' + a.ttl + ' after approval)';
    return 'once: this exact request passes one time (valid ' + a.ttl + ' after approval)';
  }

  function prettyBody(text) {
    if (!text) return null;
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }

  function approvalLink(a) {
    return BASE + '/approvals/' + encodeURIComponent(a.id);
  }

  function sessionLink(a) {
    return BASE + '/sessions/' + encodeURIComponent(a.session_id) + '?approval=' + encodeURIComponent(a.id);
  }

  // ---- Voting ------------------------------------------------------------

  // voteDialog asks for confirmation (and a reason, required to deny) and
  // casts the vote through the approvals API.
  function voteDialog(a, approve, done) {
    const title = approve ? 'Approve this request?' : 'Deny this request?';
    const reasonId = 'reason-' + a.id;
    const hintId = 'reason-hint-' + a.id;
    const reason = h('textarea', { id: reasonId, name: 'reason', maxlength: 1024, 'aria-describedby': hintId, 'aria-required': approve ? 'false' : 'true' });
    const err = h('p', { class: 'error', role: 'alert' });
    const confirm = h('button', { type: 'submit', class: approve ? 'approve' : 'deny confirm', id: 'confirm-vote' }, approve ? 'Confirm approval' : 'Confirm denial');
    const cancel = h('button', { type: 'button', id: 'cancel-vote' }, 'Cancel');
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'dlg-title-' + a.id, text: title }),
      h('p', {}, operationWords(a.operation, a.method, a.url), ' — requested by ', a.actor ? a.actor + ' for ' + a.requester : a.requester),
      h('p', { class: 'muted' }, h('code', { text: a.method + ' ' + a.url })),
      h('label', { for: reasonId, text: approve ? 'Reason (optional)' : 'Reason (required)' }),
      reason,
      h('p', { id: hintId, class: 'muted', text: approve ? 'Recorded with your vote.' : 'The agent reads this reason; say what to do instead.' }),
      err,
      h('div', { class: 'actions' }, cancel, confirm));
    const dlg = h('dialog', { 'aria-labelledby': 'dlg-title-' + a.id, id: 'vote-dialog' }, form);
    document.body.append(dlg);
    cancel.addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => dlg.remove());
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const text = reason.value.trim();
      if (!approve && !text) {
        err.textContent = 'A denial needs a reason the agent can read.';
        reason.focus();
        return;
      }
      confirm.disabled = true; cancel.disabled = true;
      confirm.textContent = 'Sending…';
      try {
        const updated = await api('POST', '/v1/approvals/' + encodeURIComponent(a.id) + ':' + (approve ? 'approve' : 'deny'), { reason: text });
        dlg.close();
        done(updated, approve);
      } catch (e) {
        err.textContent = e.message;
        confirm.disabled = false; cancel.disabled = false;
        confirm.textContent = approve ? 'Confirm approval' : 'Confirm denial';
      }
    });
    dlg.showModal();
    (approve ? confirm : reason).focus();
  }

  function voteOutcome(a, approve) {
    if (!approve) return 'You denied this request. The agent is told your reason and will not retry it.';
    if (a.state === 'approved') return 'You approved this request. It is now approved: the agent\'s request goes through (a held request is released at once).';
    const need = Math.max(0, a.min_approvals - approvalsCount(a));
    return 'Your approval is recorded. ' + need + ' more approval' + (need === 1 ? ' is' : 's are') + ' needed.';
  }

  function voteButtons(a, onVoted, onDetail) {
    const v = a.viewer || {};
    if (a.state !== 'pending') return null;
    if (v.is_requester) return onDetail ? null : h('p', { class: 'waiting' }, 'Your request — waiting for others to decide. You cannot vote on your own request.');
    if (v.voted) return h('p', { class: 'waiting' }, '✓ You voted. Waiting for others.');
    if (!v.can_vote) return h('p', { class: 'waiting' }, 'You cannot vote: ', v.why_not || 'not an approver');
    const label = operationWords(a.operation, a.method, a.url);
    return h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'approve', 'data-action': 'approve', 'aria-label': 'Approve: ' + label, onclick: () => voteDialog(a, true, onVoted) }, '✓ Approve…'),
      h('button', { type: 'button', class: 'deny', 'data-action': 'deny', 'aria-label': 'Deny: ' + label, onclick: () => voteDialog(a, false, onVoted) }, '✕ Deny…'));
  }

  // ---- Queue -------------------------------------------------------------

  function queuePage() {
    if (location.hash.length > 1) {
      // The old page's links: /approvals#ID.
      location.replace(BASE + '/approvals/' + encodeURIComponent(location.hash.slice(1)));
      return;
    }
    const PAGE_SIZE = 50;
    const title = h('h1', { text: 'Approvals waiting' });
    const status = h('p', { class: 'muted', id: 'queue-status', 'aria-live': 'off' }, 'Loading…');
    const onlyMine = h('input', { type: 'checkbox', id: 'only-decide' });
    const filter = h('div', { class: 'toolbar' },
      h('span', {}, onlyMine, ' ', h('label', { for: 'only-decide', text: 'Only requests I can decide' })));
    const banner = h('div', { id: 'banner' });
    const list = h('ol', { class: 'cards', id: 'queue', 'aria-label': 'Pending approvals, newest first' });
    const empty = h('p', { class: 'notice', id: 'queue-empty', hidden: true }, 'Nothing is waiting for you. New requests appear here by themselves.');
    const prev = h('button', { type: 'button', id: 'newer', disabled: true }, '← Newer');
    const next = h('button', { type: 'button', id: 'older', disabled: true }, 'Older →');
    const pageInfo = h('span', { class: 'muted' });
    const pager = h('nav', { class: 'pager', 'aria-label': 'Pages of approvals' }, prev, pageInfo, next);
    setMain(title, status, filter, banner, list, empty, pager);

    const tokens = ['']; // page tokens, tokens[i] starts page i
    let pageIndex = 0;
    let nextToken = '';
    const rendered = new Map(); // id -> {json, node}
    let first = true;

    function card(a) {
      const v = a.viewer || {};
      const li = h('li', { class: 'card' + (v.is_requester ? ' mine' : ''), id: 'approval-' + a.id, 'data-id': a.id });
      li.append(
        h('h2', {}, h('a', { href: approvalLink(a) }, operationWords(a.operation, a.method, a.url))),
        h('dl', { class: 'facts' },
          h('dt', { text: 'Requested by' }), h('dd', {}, who(a)),
          h('dt', { text: 'Resource' }), h('dd', {}, h('code', { text: a.resource || a.url })),
          h('dt', { text: 'Why' }), h('dd', {}, a.message || ('rule ' + a.rule), ' ', h('span', { class: 'muted' }, '(' + (a.policy ? a.policy + '/' : '') + a.rule + ')')),
          h('dt', { text: 'Votes' }), h('dd', { text: votesLine(a) }),
          h('dt', { text: 'Asked' }), h('dd', {}, when(a.created_at)),
          h('dt', { text: 'Expires' }), h('dd', {}, when(a.expires_at))),
        voteButtons(a, (updated, approve) => {
          showBanner(voteOutcome(updated, approve), 'ok');
          refresh();
        }));
      return li;
    }

    function showBanner(text, kind) {
      banner.replaceChildren(h('p', { class: 'banner ' + kind, role: 'status', id: 'vote-result' }, text));
      announce(text);
    }

    function render(items) {
      const keep = new Set();
      let prevNode = null;
      for (const a of items) {
        keep.add(a.id);
        const json = JSON.stringify(a);
        let r = rendered.get(a.id);
        if (!r || r.json !== json) {
          const node = card(a);
          if (r) {
            const hadFocus = r.node.contains(document.activeElement);
            r.node.replaceWith(node);
            if (hadFocus) { const b = node.querySelector('button, a'); if (b) b.focus(); }
          }
          r = { json, node };
          rendered.set(a.id, r);
        }
        const want = prevNode ? prevNode.nextSibling : list.firstChild;
        if (want !== r.node) list.insertBefore(r.node, want);
        prevNode = r.node;
      }
      for (const [id, r] of rendered) {
        if (!keep.has(id)) { r.node.remove(); rendered.delete(id); }
      }
      empty.hidden = items.length > 0;
    }

    let inflight = false;
    async function refresh() {
      if (inflight) return;
      inflight = true;
      try {
        const q = '/v1/approvals?state=pending&page_size=' + PAGE_SIZE + (tokens[pageIndex] ? '&page_token=' + encodeURIComponent(tokens[pageIndex]) : '');
        const j = await api('GET', q);
        let items = j.approvals;
        if (onlyMine.checked) items = items.filter(a => a.viewer && a.viewer.can_vote);
        render(items);
        nextToken = j.next_page_token || '';
        next.disabled = !nextToken;
        prev.disabled = pageIndex === 0;
        pageInfo.textContent = 'Page ' + (pageIndex + 1);
        const n = items.length;
        status.textContent = 'Updated live · ' + n + ' shown on this page · ' + new Date().toLocaleTimeString();
        if (first) {
          first = false;
          performance.mark('airlock-interactive');
        }
      } catch (e) {
        status.textContent = e.message;
      } finally {
        inflight = false;
      }
    }
    next.addEventListener('click', () => { if (nextToken) { tokens[pageIndex + 1] = nextToken; pageIndex++; list.replaceChildren(); rendered.clear(); refresh(); } });
    prev.addEventListener('click', () => { if (pageIndex > 0) { pageIndex--; list.replaceChildren(); rendered.clear(); refresh(); } });
    onlyMine.addEventListener('change', refresh);
    refresh();
    setInterval(refresh, POLL_MS);
  }

  // ---- One approval ------------------------------------------------------

  function approvalPage() {
    const id = PAGE_ID;
    const banner = h('div', { id: 'banner' });
    const holder = h('div', { id: 'approval' });
    setMain(banner, holder);
    let lastJSON = '';
    let diffShown = false;
    const diffHolder = h('section', { id: 'policy-diff', 'aria-labelledby': 'diff-title' });

    function section(title, ...content) {
      return h('section', {}, h('h3', { text: title }), ...content);
    }

    function render(a) {
      const v = a.viewer || {};
      const body = prettyBody(a.body_excerpt);
      const nodes = [
        h('p', {}, h('a', { href: BASE + '/' }, '← All approvals')),
        h('h1', {}, operationWords(a.operation, a.method, a.url)),
        h('p', {}, stateBadge(a.state), ' ', a.state === 'pending' ? votesLine(a) : ''),
      ];
      if (v.is_requester && a.state === 'pending') {
        nodes.push(h('p', { class: 'banner info', id: 'requester-note' }, 'This is your request. It is waiting for others: you cannot vote on your own request.'));
      }
      nodes.push(
        h('div', { class: 'why' }, h('strong', { text: 'Why it needs approval: ' }), a.message || ('rule ' + a.rule + ' asks for approval'),
          h('br'), h('span', { class: 'muted' }, 'Rule ', h('code', { text: a.rule }), a.policy ? [' of policy ', h('code', { text: a.policy })] : '')),
        h('dl', { class: 'facts' },
          h('dt', { text: 'Requested by' }), h('dd', {}, who(a)),
          h('dt', { text: 'Operation' }), h('dd', {}, h('code', { text: a.operation || '(not recognised)' })),
          h('dt', { text: 'Request' }), h('dd', {}, h('code', { text: a.method + ' ' + a.url })),
          h('dt', { text: 'Resource' }), h('dd', {}, h('code', { text: a.resource || '—' })),
          h('dt', { text: 'Grant' }), h('dd', { text: grantWords(a) }),
          h('dt', { text: 'Approvers' }), h('dd', { text: a.approvers.join(', ') + ' (' + a.min_approvals + ' needed)' }),
          h('dt', { text: 'Asked' }), h('dd', {}, when(a.created_at)),
          h('dt', { text: a.state === 'approved' ? 'Grant ends' : 'Expires' }), h('dd', {}, when(a.state === 'approved' ? a.grant_expires_at : a.expires_at)),
          h('dt', { text: 'Session' }), h('dd', {}, a.session_id ? h('a', { href: sessionLink(a), id: 'session-link' }, 'The agent\'s session so far') : '—'),
          h('dt', { text: 'Approval id' }), h('dd', {}, h('code', { text: a.id }))),
        voteButtons(a, (updated, approve) => {
          const msg = voteOutcome(updated, approve);
          banner.replaceChildren(h('p', { class: 'banner ok', role: 'status', id: 'vote-result' }, msg));
          announce(msg);
          refresh();
        }, true) || '');
      if (/\.setIamPolicy$/.test(a.operation || '')) nodes.push(diffHolder);
      nodes.push(body
        ? h('details', { open: true, id: 'body' }, h('summary', { text: 'Request body (masked)' }), h('pre', { tabindex: 0, 'aria-label': 'Request body', text: body }))
        : h('p', { class: 'muted', text: 'The request has no body.' }));
      const votes = a.votes.length
        ? h('ol', { id: 'votes' }, a.votes.map(x => h('li', {}, h('strong', { text: x.decision === 'approve' ? '✓ Approved' : '✕ Denied' }), ' by ', x.email || x.approver, ' ', when(x.at), x.reason ? [': “', x.reason, '”'] : '')))
        : h('p', { class: 'muted', text: 'No votes yet.' });
      nodes.push(section('Votes', h('p', { text: votesLine(a) }), votes));
      holder.replaceChildren(...nodes);
      if (/\.setIamPolicy$/.test(a.operation || '') && !diffShown) {
        diffShown = true;
        loadDiff();
      }
    }

    async function loadDiff() {
      diffHolder.replaceChildren(h('h3', { id: 'diff-title', text: 'IAM policy change' }), h('p', { class: 'muted', text: 'Reading the current policy…' }));
      try {
        const d = await api('GET', '/v1/approvals/' + encodeURIComponent(id) + ':policyDiff');
        const items = [];
        const line = (kind, b, m) => h('li', { class: kind === 'add' ? 'add' : 'del' },
          h('span', { class: 'sign' }, kind === 'add' ? '+ Adds' : '− Removes'), ' ', m, ' → ', b.role, b.condition ? ' (if ' + b.condition + ')' : '');
        const out = [h('h3', { id: 'diff-title', text: 'IAM policy change' })];
        if (d.compared) {
          for (const b of d.added) for (const m of b.members) items.push(line('add', b, m));
          for (const b of d.removed) for (const m of b.members) items.push(line('del', b, m));
          out.push(items.length ? h('ul', { class: 'diff', 'aria-label': 'Members added and removed' }, items) : h('p', { text: 'No member is added or removed.' }));
        } else {
          out.push(h('p', { class: 'notice', text: d.note || 'The current policy could not be compared.' }));
          if (d.requested.length) {
            out.push(h('p', { text: 'Bindings the request sets (the whole new policy):' }),
              h('ul', {}, d.requested.map(b => h('li', {}, h('code', { text: b.role }), ': ', b.members.join(', '), b.condition ? ' (if ' + b.condition + ')' : ''))));
          }
        }
        if (d.compared && d.note) out.push(h('p', { class: 'muted', text: d.note }));
        diffHolder.replaceChildren(...out);
      } catch (e) {
        diffHolder.replaceChildren(h('h3', { id: 'diff-title', text: 'IAM policy change' }), h('p', { class: 'error', text: e.message }));
      }
    }

    let inflight = false;
    let first = true;
    async function refresh() {
      if (inflight || document.getElementById('vote-dialog')) return;
      inflight = true;
      try {
        const a = await api('GET', '/v1/approvals/' + encodeURIComponent(id));
        const json = JSON.stringify(a);
        if (json !== lastJSON) {
          const hadFocus = holder.contains(document.activeElement) ? document.activeElement.id : '';
          lastJSON = json;
          render(a);
          if (hadFocus && document.getElementById(hadFocus)) document.getElementById(hadFocus).focus();
          document.title = operationWords(a.operation) + ' · airlock';
        }
        if (first) { first = false; performance.mark('airlock-interactive'); }
      } catch (e) {
        if (first) holder.replaceChildren(h('h1', { text: 'Approval' }), h('p', { class: 'banner bad', role: 'alert', text: e.message }));
      } finally {
        inflight = false;
      }
    }
    refresh();
    setInterval(refresh, POLL_MS);
  }

  // ---- Sessions ----------------------------------------------------------

  const DECISIONS = ['allowed', 'policy_denied', 'approval_required', 'approval_denied', 'unauthenticated', 'unavailable', 'invalid'];

  function sessionsPage() {
    const title = h('h1', { text: 'Sessions' });
    if (!AUDITOR) {
      setMain(title, h('p', { class: 'notice', id: 'not-auditor' },
        'Only auditors (console.auditors) browse every session. As an approver, open the session of a request from its approval page.'));
      return;
    }
    const field = (id, label, input) => h('div', {}, h('label', { for: id, text: label }), input);
    const since = h('input', { id: 'f-since', type: 'datetime-local' });
    const until = h('input', { id: 'f-until', type: 'datetime-local' });
    const subject = h('input', { id: 'f-subject', type: 'text', autocomplete: 'off' });
    const actor = h('input', { id: 'f-actor', type: 'text', autocomplete: 'off' });
    const method = h('input', { id: 'f-method', type: 'text', placeholder: 'compute.instances.delete', autocomplete: 'off' });
    const decision = h('select', { id: 'f-decision' }, h('option', { value: '', text: 'any' }), DECISIONS.map(d => h('option', { value: d, text: d.replace(/_/g, ' ') })));
    const text = h('input', { id: 'f-text', type: 'search', autocomplete: 'off' });
    const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter sessions' },
      field('f-since', 'Active after', since), field('f-until', 'Active before', until),
      field('f-subject', 'Subject', subject), field('f-actor', 'Actor (agent)', actor),
      field('f-method', 'GCP method', method), field('f-decision', 'Decision', decision),
      field('f-text', 'Text', text), h('div', {}, h('button', { type: 'submit', class: 'primary', id: 'search' }, 'Search')));
    const status = h('p', { class: 'muted', role: 'status' });
    const table = h('table', { id: 'sessions' });
    const prev = h('button', { type: 'button', disabled: true }, '← Previous');
    const next = h('button', { type: 'button', disabled: true }, 'Next →');
    setMain(title, form, status, table, h('nav', { class: 'pager', 'aria-label': 'Pages of sessions' }, prev, next));
    const tokens = [''];
    let page = 0;
    let nextToken = '';

    function params() {
      const p = new URLSearchParams();
      const iso = (v) => v ? new Date(v).toISOString() : '';
      for (const [k, v] of [['since', iso(since.value)], ['until', iso(until.value)], ['subject', subject.value.trim()], ['actor', actor.value.trim()],
        ['method', method.value.trim()], ['decision', decision.value], ['q', text.value.trim()]]) {
        if (v) p.set(k, v);
      }
      return p;
    }

    async function load() {
      status.textContent = 'Reading the recordings…';
      const p = params();
      p.set('page_size', '50');
      if (tokens[page]) p.set('page_token', tokens[page]);
      try {
        const j = await api('GET', '/v1/sessions?' + p.toString());
        nextToken = j.next_page_token || '';
        next.disabled = !nextToken;
        prev.disabled = page === 0;
        status.textContent = j.total + ' session' + (j.total === 1 ? '' : 's') + ' match.';
        const head = h('thead', {}, h('tr', {}, ['Session', 'Started', 'Duration', 'Requests', 'Subjects', 'Actors', 'Decisions'].map(c => h('th', { scope: 'col', text: c }))));
        const rows = j.sessions.map(s => {
          const dur = Math.round((new Date(s.last) - new Date(s.first)) / 1000);
          const dec = Object.entries(s.decisions || {}).map(([k, v]) => k.replace(/_/g, ' ') + ': ' + v).join(', ');
          return h('tr', {},
            h('td', {}, h('a', { href: BASE + '/sessions/' + encodeURIComponent(s.id) }, h('code', { text: s.id }))),
            h('td', {}, when(s.first)),
            h('td', { text: dur < 90 ? dur + ' s' : Math.round(dur / 60) + ' min' }),
            h('td', { text: String(s.requests) }),
            h('td', { text: s.subjects.join(', ') || '—' }),
            h('td', { text: s.actors.join(', ') || '—' }),
            h('td', { text: dec || '—' }));
        });
        table.replaceChildren(h('caption', { class: 'sr-only', text: 'Recorded sessions, newest first' }), head, h('tbody', {}, rows));
        performance.mark('airlock-interactive');
      } catch (e) {
        status.textContent = e.message;
      }
    }
    form.addEventListener('submit', (ev) => { ev.preventDefault(); tokens.length = 1; page = 0; load(); });
    next.addEventListener('click', () => { if (nextToken) { tokens[page + 1] = nextToken; page++; load(); } });
    prev.addEventListener('click', () => { if (page > 0) { page--; load(); } });
    load();
  }

  // ---- One session -------------------------------------------------------

  const VSTATE = {
    verified: '✓ Verified',
    altered: '⚠ ALTERED: this event does not match the recorded hash chain; do not trust it',
    unverified: '⚠ Unverified: its segment failed verification, so its chain cannot vouch for it',
  };

  function eventSummary(e) {
    if (e.decision) {
      const d = e.decision;
      const url = (d.host || '') + (d.path || '') + (d.query ? '?' + d.query : '');
      const parts = [h('span', { class: 'decision-' + d.decision, text: d.decision.replace(/_/g, ' ').toUpperCase() }), ' ', h('code', { text: (d.method || '') + ' ' + url })];
      if (d.gcp_method) parts.push(' [', d.gcp_method, ']');
      const whoText = (d.subject || '(unauthenticated)') + (d.email && d.email !== d.subject ? ' <' + d.email + '>' : '') + (d.actor ? ' via ' + d.actor : '');
      parts.push(h('br'), 'who: ', whoText);
      const rules = (d.rules && d.rules.length) ? d.rules.join(', ') : (d.rule ? (d.policy ? d.policy + '/' : '') + d.rule : '');
      if (rules) parts.push(' · rule: ', rules);
      if (d.approval_id) parts.push(' · approval ', h('code', { text: d.approval_id }));
      if (d.message) parts.push(h('br'), d.message);
      return [parts, d.body];
    }
    if (e.request) return [[h('code', { text: (e.request.method || '') + ' ' + (e.request.host || '') + (e.request.path || '') })], e.request.body];
    if (e.response) return [['status ' + e.response.status + ', ' + e.response.total_bytes + ' bytes'], e.response.body];
    if (e.vote) {
      const v = e.vote;
      return [[h('strong', { text: v.vote.toUpperCase() }), ' by ', v.approver, ' on approval ', h('code', { text: v.approval_id }), v.reason ? ': “' + v.reason + '”' : '', v.state ? ' (now ' + v.state + ')' : ''], ''];
    }
    if (e.kind === 'close') return [['segment ' + e.segment + ' closed: ' + (e.reason || '')], ''];
    return [[e.kind], ''];
  }

  function sessionPage() {
    const id = PAGE_ID;
    const approval = new URLSearchParams(location.search).get('approval') || '';
    const q = approval ? '?approval=' + encodeURIComponent(approval) : '';
    setMain(h('h1', {}, 'Session ', h('code', { text: id })), h('p', { class: 'muted', text: 'Reading and verifying the recording…' }));
    api('GET', '/v1/sessions/' + encodeURIComponent(id) + q).then(render, (e) => {
      setMain(h('h1', {}, 'Session ', h('code', { text: id })), h('p', { class: 'banner bad', role: 'alert', text: e.message }));
    });

    function render(s) {
      const v = s.verification;
      const verdict = v.ok
        ? h('p', { class: 'banner ok', id: 'verdict' }, '✓ Verified: ' + v.events + ' events in ' + v.chunks + ' chunks; hash chains intact.' + (v.signed ? ' ' + v.signed + ' signed manifests.' : ''))
        : h('div', { class: 'banner bad', id: 'verdict', role: 'alert' },
          h('p', {}, h('strong', { text: '⚠ Verification failed: ' }), 'this session was altered or cut short. Events marked ALTERED or Unverified cannot be trusted.'),
          h('ul', {}, v.problems.map(p => h('li', { text: p.text }))));
      const speed = h('select', { id: 'replay-speed' }, [['1', '1× (real time)'], ['2', '2×'], ['5', '5×'], ['10', '10×'], ['60', '60×']].map(([val, t]) => h('option', { value: val, text: t })));
      const play = h('button', { type: 'button', id: 'replay' }, '▶ Replay');
      const all = h('button', { type: 'button', id: 'show-all' }, 'Show all');
      const dl = (fmt, label) => h('a', { class: 'button', href: BASE + '/v1/sessions/' + encodeURIComponent(id) + '/download?format=' + fmt + (approval ? '&approval=' + encodeURIComponent(approval) : ''), download: '' }, label);
      const tools = h('div', { class: 'toolbar' },
        h('span', {}, h('label', { for: 'replay-speed', text: 'Replay speed ' }), speed), play, all,
        dl('jsonl', 'Download JSONL'), dl('html', 'Download HTML'));
      const items = s.events.map((x, i) => {
        const e = x.event;
        const [summary, bodyText] = eventSummary(e);
        const pretty = prettyBody(bodyText);
        return h('li', { class: 'event ' + x.verification, id: 'event-' + i, 'data-verification': x.verification, 'data-time': e.time },
          h('div', { class: 'head' }, h('span', { class: 'kind', text: e.kind }), when(e.time), h('span', { class: 'vstate', text: VSTATE[x.verification] || x.verification })),
          h('div', {}, summary),
          pretty ? h('details', {}, h('summary', { text: 'Body (masked)' }), h('pre', { text: pretty })) : '',
          e.request_id ? h('div', { class: 'muted' }, h('small', { text: 'request ' + e.request_id })) : '');
      });
      const timeline = h('ol', { class: 'timeline', id: 'timeline', 'aria-label': 'Events in time order' }, items);
      const subjects = new Set(), actors = new Set();
      for (const x of s.events) {
        const d = x.event.decision;
        if (d && d.subject) subjects.add(d.subject);
        if (d && d.actor) actors.add(d.actor);
      }
      const first = s.events.length ? s.events[0].event.time : null;
      const last = s.events.length ? s.events[s.events.length - 1].event.time : null;
      setMain(
        h('p', {}, h('a', { href: approval ? BASE + '/approvals/' + encodeURIComponent(approval) : BASE + '/sessions' }, approval ? '← The approval' : '← All sessions')),
        h('h1', {}, 'Session ', h('code', { text: s.id })),
        h('dl', { class: 'facts' },
          h('dt', { text: 'From' }), h('dd', {}, when(first)),
          h('dt', { text: 'To' }), h('dd', {}, when(last)),
          h('dt', { text: 'Events' }), h('dd', { text: String(s.total_events) + (s.truncated ? ' (the first ' + s.events.length + ' shown; download for all)' : '') }),
          h('dt', { text: 'Subjects' }), h('dd', { text: [...subjects].join(', ') || '—' }),
          h('dt', { text: 'Actors' }), h('dd', { text: [...actors].join(', ') || '—' })),
        verdict, tools, timeline,
        s.warnings.length ? h('p', { class: 'muted' }, 'Notes: ' + s.warnings.join('; ')) : '');
      performance.mark('airlock-interactive');

      let timer = null;
      function stop() {
        if (timer) clearTimeout(timer);
        timer = null;
        play.textContent = '▶ Replay';
      }
      function showAll() {
        stop();
        for (const li of items) li.hidden = false;
      }
      function step(i) {
        if (i >= items.length) { stop(); announce('Replay finished.'); return; }
        items[i].hidden = false;
        const t0 = Date.parse(items[i].dataset.time);
        const t1 = i + 1 < items.length ? Date.parse(items[i + 1].dataset.time) : t0;
        const gap = Math.min(Math.max((t1 - t0) / Number(speed.value), 0), 3000);
        timer = setTimeout(() => step(i + 1), gap);
      }
      play.addEventListener('click', () => {
        if (timer) { stop(); return; }
        for (const li of items) li.hidden = true;
        play.textContent = '⏸ Pause';
        announce('Replaying at ' + speed.value + '×.');
        step(0);
      });
      all.addEventListener('click', showAll);
    }
  }

  // ---- Start -------------------------------------------------------------

  const pages = { queue: queuePage, approval: approvalPage, sessions: sessionsPage, session: sessionPage };
  if (pages[PAGE]) pages[PAGE]();
})();
