// The sandbox's Slack client: who you are, your conversations, App Home, modals, the clock.
// It only reads /sandbox/state and asks the sandbox to do what a person does in Slack;
// the sandbox turns each into Slack's signed request to the bot.

import {
  checkInputs, escapeHtml, mrkdwn, plainText, readInputs, renderBlocks, textHtml,
} from "./blocks.js";

const $ = (selector) => document.querySelector(selector);
const ui = {
  me: null,
  conv: null,
  tab: "messages",
  state: null,
  seen: {},
  dismissed: new Set(),
  modalKey: "",
  homeKey: "",
  messagesKey: "",
  viewValues: {},
  suggestion: { items: [], index: 0, kind: null },
};

async function api(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: ui.me, ...body }),
  });
  let answer = {};
  try { answer = await response.json(); } catch { answer = {}; }
  if (!response.ok || answer.ok === false) {
    throw new Error(answer.error || `The sandbox answered ${response.status}.`);
  }
  return answer;
}

function toast(text, kind = "info") {
  const node = $("#toast");
  node.textContent = text;
  node.className = `toast ${kind}`;
  node.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { node.hidden = true; }, kind === "error" ? 8000 : 5000);
}

// -- reading the state

let refreshing = null;
let again = false;

async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    do {
      again = false;
      const query = new URLSearchParams({ user: ui.me || "", channel: ui.conv || "" });
      const response = await fetch(`/sandbox/state?${query}`);
      if (response.ok) {
        ui.state = await response.json();
        render();
      }
    } while (again);
  })();
  try { await refreshing; } finally { refreshing = null; }
}

function listen() {
  const source = new EventSource("/sandbox/events");
  source.onmessage = () => refresh();
  source.onopen = () => $("#live").classList.remove("off");
  source.onerror = () => $("#live").classList.add("off");
}

function context() {
  const state = ui.state;
  const people = new Map(state.people.map((p) => [p.id, p]));
  for (const bot of state.bots) people.set(bot.id, { id: bot.id, name: bot.name, real_name: bot.name });
  const channels = new Map(state.conversations.filter((c) => c.kind === "channel")
    .map((c) => [c.id, c.name]));
  return { people, channels, confirm };
}

function me() {
  return ui.state.people.find((p) => p.id === ui.me) || { tz: "UTC", real_name: ui.me };
}

function saveLocation() {
  const place = `#/${ui.me}/${ui.conv}/${ui.tab}`;
  if (location.hash !== place) history.replaceState(null, "", place);
}

// -- rendering

function render() {
  const state = ui.state;
  if (!ui.me) ui.me = state.me;
  if (!ui.conv) ui.conv = state.channel;
  $("#team").textContent = state.team.name;
  renderWho();
  renderNav();
  renderClock();
  renderHeader();
  if (ui.tab === "home" && isApp()) renderHome(); else renderMessages();
  renderModal();
  saveLocation();
}

function isApp() {
  return ui.state.conversations.find((c) => c.id === ui.conv)?.kind === "app";
}

function renderWho() {
  const select = $("#who");
  const key = ui.state.people.map((p) => p.id).join();
  if (select.dataset.key !== key) {
    select.replaceChildren(...ui.state.people.map((p) => {
      const option = document.createElement("option");
      option.value = p.id;
      option.textContent = p.title ? `${p.real_name} · ${p.title}` : p.real_name;
      return option;
    }));
    select.dataset.key = key;
  }
  select.value = ui.me;
}

function renderNav() {
  const nav = $("#nav");
  nav.replaceChildren();
  if (!ui.seen[ui.me]) {
    // What was there when you became this person counts as read; only what comes after is new.
    ui.seen[ui.me] = Object.fromEntries(ui.state.conversations.map((c) => [c.id, c.latest]));
  }
  const seen = ui.seen[ui.me];
  const groups = [["Apps", "app"], ["Channels", "channel"]];
  for (const [title, kind] of groups) {
    const heading = document.createElement("div");
    heading.className = "nav-title";
    heading.textContent = title;
    nav.append(heading);
    for (const conversation of ui.state.conversations.filter((c) => c.kind === kind)) {
      if (conversation.id === ui.conv) seen[conversation.id] = conversation.latest;
      const link = document.createElement("button");
      link.type = "button";
      link.className = "nav-item";
      link.dataset.conv = conversation.id;
      if (conversation.id === ui.conv) link.classList.add("active");
      const unread = conversation.latest && conversation.latest > (seen[conversation.id] || "");
      if (unread) link.classList.add("unread");
      link.innerHTML = `<span class="nav-icon">${kind === "app" ? "★" : "#"}</span>`
        + `<span>${escapeHtml(conversation.name)}</span>`
        + (unread ? '<span class="badge" aria-label="new messages">•</span>' : "");
      link.addEventListener("click", () => openConversation(conversation.id, "messages"));
      nav.append(link);
    }
  }
}

function formatWhen(date, tz, options) {
  return new Intl.DateTimeFormat("en-GB", { timeZone: tz, ...options }).format(date);
}

function renderClock() {
  const now = new Date(ui.state.clock.now);
  const tz = me().tz;
  $("#clock-now").textContent = `${formatWhen(now, tz, {
    weekday: "short", day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit",
  })} · ${tz}`;
  $("#clock-now").dataset.iso = ui.state.clock.now;
}

function renderHeader() {
  const conversation = ui.state.conversations.find((c) => c.id === ui.conv);
  const app = conversation?.kind === "app";
  $("#conv-title").innerHTML = app
    ? `<span class="app-mark">★</span> ${escapeHtml(conversation.name)} <span class="app-badge">APP</span>`
    : `# ${escapeHtml(conversation?.name || "")}`;
  $("#tabs").hidden = !app || !ui.state.app.home_tab;
  $("#tab-home").classList.toggle("active", ui.tab === "home" && app);
  $("#tab-messages").classList.toggle("active", ui.tab !== "home" || !app);
  $("#tab-home").setAttribute("aria-selected", String(ui.tab === "home" && app));
  $("#tab-messages").setAttribute("aria-selected", String(ui.tab !== "home" || !app));
  const showHome = ui.tab === "home" && app;
  $("#home").hidden = !showHome;
  $("#messages").hidden = showHome;
  $("#composer").hidden = showHome;
  const where = app ? conversation.name : `#${conversation?.name || ""}`;
  $("#compose").placeholder = `Message ${where}, or / for a command`;
}

function renderHome() {
  const home = ui.state.home;
  const key = `${ui.me}:${home?.hash || ""}`;
  if (ui.homeKey === key) return;
  ui.homeKey = key;
  const pane = $("#home");
  pane.replaceChildren();
  if (!home) {
    const waiting = document.createElement("div");
    waiting.className = "empty";
    waiting.textContent = "Opening the Home tab…";
    pane.append(waiting);
    return;
  }
  const ctx = {
    ...context(),
    onAction: (element, blockId, payload) => act({ source: "home" }, element, blockId, payload),
  };
  pane.append(renderBlocks(home.blocks, ctx));
}

function dayLabel(date, tz) {
  return formatWhen(date, tz, { weekday: "long", day: "numeric", month: "long", year: "numeric" });
}

function initials(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

function hue(id) {
  let h = 0;
  for (const c of id || "") h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function renderMessages() {
  const shown = ui.state.messages.filter((m) => !(m.ephemeral && ui.dismissed.has(m.ts)));
  const key = `${ui.me}:${ui.conv}:${JSON.stringify(shown)}`;
  if (ui.messagesKey === key) return;
  ui.messagesKey = key;
  const pane = $("#messages");
  const atBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 80;
  pane.replaceChildren();
  const tz = me().tz;
  if (!shown.length) {
    const empty = document.createElement("div");
    empty.className = "empty";
    empty.textContent = isApp()
      ? "No messages from the app yet. Try /contract help, or move the clock on."
      : "Nothing here yet.";
    pane.append(empty);
  }
  let lastDay = "";
  const ctx = context();
  for (const message of shown) {
    const when = new Date(Number(message.ts) * 1000);
    const day = dayLabel(when, tz);
    if (day !== lastDay) {
      const divider = document.createElement("div");
      divider.className = "day-divider";
      divider.innerHTML = `<span>${escapeHtml(day)}</span>`;
      pane.append(divider);
      lastDay = day;
    }
    pane.append(renderMessage(message, when, tz, ctx));
  }
  if (atBottom || ui.scrollToEnd) pane.scrollTop = pane.scrollHeight;
  ui.scrollToEnd = false;
}

function renderMessage(message, when, tz, ctx) {
  const node = document.createElement("article");
  node.className = `msg${message.ephemeral ? " ephemeral" : ""}`;
  node.dataset.ts = message.ts;
  const avatar = document.createElement("div");
  avatar.className = `avatar${message.is_bot ? " bot" : ""}`;
  avatar.textContent = message.is_bot ? "★" : initials(message.author);
  if (!message.is_bot) avatar.style.background = `hsl(${hue(message.user)} 45% 42%)`;
  const body = document.createElement("div");
  body.className = "msg-body";
  const head = document.createElement("div");
  head.className = "msg-head";
  head.innerHTML = `<b class="author">${escapeHtml(message.author)}</b>`
    + (message.is_bot ? ' <span class="app-badge">APP</span>' : "")
    + ` <time title="${escapeHtml(when.toISOString())}">${escapeHtml(formatWhen(when, tz, { hour: "2-digit", minute: "2-digit" }))}</time>`
    + (message.edited ? ' <span class="edited">(edited)</span>' : "");
  body.append(head);
  const source = message.ephemeral
    ? { source: "ephemeral", channel: ui.conv, ts: message.ts }
    : { source: "message", channel: ui.conv, ts: message.ts };
  const blockCtx = {
    ...ctx,
    onAction: (element, blockId, payload) => act(source, element, blockId, payload),
  };
  if (message.blocks.length) body.append(renderBlocks(message.blocks, blockCtx));
  else {
    const text = document.createElement("div");
    text.className = "msg-text";
    text.innerHTML = mrkdwn(message.text, ctx);
    body.append(text);
  }
  if (message.files && message.files.length) {
    const files = document.createElement("div");
    files.className = "msg-files";
    for (const file of message.files) {
      const link = document.createElement("a");
      link.className = "msg-file";
      link.href = file.url;
      link.download = file.name;
      link.textContent = `📎 ${file.name}`;
      link.title = file.title;
      files.append(link);
    }
    body.append(files);
  }
  if (message.ephemeral) {
    const note = document.createElement("div");
    note.className = "ephemeral-note";
    note.innerHTML = '<span class="eye">👁</span> Only visible to you · ';
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "link";
    dismiss.textContent = "Dismiss message";
    dismiss.addEventListener("click", () => {
      ui.dismissed.add(message.ts);
      ui.messagesKey = "";
      renderMessages();
    });
    note.append(dismiss);
    body.append(note);
  }
  node.append(avatar, body);
  if (!message.ephemeral && ui.state.shortcuts.length) node.append(messageMenu(message));
  return node;
}

function messageMenu(message) {
  const holder = document.createElement("div");
  holder.className = "msg-actions";
  const toggle = document.createElement("button");
  toggle.type = "button";
  toggle.className = "msg-menu-toggle";
  toggle.setAttribute("aria-label", "More actions");
  toggle.textContent = "⋮";
  const menu = document.createElement("div");
  menu.className = "bk-menu msg-menu";
  menu.hidden = true;
  const heading = document.createElement("div");
  heading.className = "menu-heading";
  heading.textContent = ui.state.app.name;
  menu.append(heading);
  for (const shortcut of ui.state.shortcuts) {
    const item = document.createElement("button");
    item.type = "button";
    item.className = "bk-menu-item";
    item.textContent = shortcut.name;
    item.title = shortcut.description;
    item.addEventListener("click", async () => {
      menu.hidden = true;
      try {
        await api("/sandbox/shortcut", {
          channel: ui.conv, ts: message.ts, callback_id: shortcut.callback_id,
        });
      } catch (error) { toast(error.message, "error"); }
    });
    menu.append(item);
  }
  toggle.addEventListener("click", (event) => {
    event.stopPropagation();
    document.querySelectorAll(".msg-menu").forEach((m) => { if (m !== menu) m.hidden = true; });
    menu.hidden = !menu.hidden;
  });
  holder.append(toggle, menu);
  return holder;
}

// -- modals

// Keep what was typed in the modal on screen, for when it is built again (an update, or its
// person coming back to it).
function stashModal() {
  const current = $("#modal-layer .modal");
  if (current) ui.viewValues[current.dataset.viewId] = readInputs(current);
}

function hideModal() {
  const layer = $("#modal-layer");
  ui.modalKey = "";
  layer.hidden = true;
  layer.replaceChildren();
}

function renderModal() {
  const layer = $("#modal-layer");
  const modal = ui.state.modal;
  if (!modal) {
    if (!layer.hidden || layer.childElementCount) hideModal();
    return;
  }
  const view = modal.view;
  const key = `${ui.me}:${view.id}:${view.hash}`;
  if (ui.modalKey === key) return;
  stashModal();
  ui.modalKey = key;
  layer.replaceChildren(buildModal(view, modal.depth, {}));
  layer.hidden = false;
  layer.querySelector("[autofocus], .bk-input input, .bk-input textarea, .bk-input select")?.focus();
}

function buildModal(view, depth, errors) {
  const modal = document.createElement("div");
  modal.className = "modal";
  modal.dataset.viewId = view.id;
  modal.setAttribute("role", "dialog");
  modal.setAttribute("aria-modal", "true");
  modal.setAttribute("aria-label", plainText(view.title));
  const header = document.createElement("header");
  header.innerHTML = `<h2>${escapeHtml(plainText(view.title))}</h2>`;
  const x = document.createElement("button");
  x.type = "button";
  x.className = "modal-x";
  x.setAttribute("aria-label", "Close");
  x.textContent = "×";
  x.addEventListener("click", () => closeModal(view));
  header.append(x);
  const body = document.createElement("div");
  body.className = "modal-body";
  const ctx = {
    ...context(),
    values: ui.viewValues[view.id],
    errors,
    onAction: (element, blockId, payload) => act(
      { source: "view", view_id: view.id, values: flatValues(readInputs(modal)) },
      element, blockId, payload),
  };
  body.append(renderBlocks(view.blocks, ctx));
  const clearError = (event) => {
    const input = event.target.closest(".bk-input.has-error");
    if (!input) return;
    input.classList.remove("has-error");
    input.querySelector(".bk-error").textContent = "";
  };
  body.addEventListener("input", clearError);
  body.addEventListener("change", clearError);
  const footer = document.createElement("footer");
  const close = document.createElement("button");
  close.type = "button";
  close.className = "bk-button";
  close.textContent = plainText(view.close) || (depth > 1 ? "Back" : "Cancel");
  close.addEventListener("click", () => closeModal(view));
  footer.append(close);
  if (view.submit) {
    const submit = document.createElement("button");
    submit.type = "button";
    submit.className = "bk-button primary";
    submit.textContent = plainText(view.submit);
    submit.addEventListener("click", () => submitModal(view, depth, modal, submit));
    footer.append(submit);
  }
  const problem = document.createElement("div");
  problem.className = "modal-problem";
  problem.setAttribute("role", "alert");
  problem.hidden = true;
  modal.append(header, body, problem, footer);
  return modal;
}

// {block_id: {action_id: value}} -> {block_id: value}, as the driver takes them.
function flatValues(values) {
  const flat = {};
  for (const [blockId, byAction] of Object.entries(values)) {
    const value = Object.values(byAction)[0];
    if (value != null) flat[blockId] = value;
  }
  return flat;
}

async function submitModal(view, depth, modal, button) {
  const values = readInputs(modal);
  const errors = checkInputs(view, values);
  if (Object.keys(errors).length) {
    showErrors(view, depth, modal, values, errors);
    return;
  }
  button.disabled = true;
  button.classList.add("busy");
  try {
    const answer = await api("/sandbox/submit", { view_id: view.id, values: flatValues(values) });
    if (answer.errors && Object.keys(answer.errors).length) {
      showErrors(view, depth, modal, values, answer.errors);
    } else {
      ui.viewValues[view.id] = values;
    }
  } catch (error) {
    const problem = modal.querySelector(".modal-problem");
    problem.textContent = error.message;
    problem.hidden = false;
  } finally {
    button.disabled = false;
    button.classList.remove("busy");
  }
}

function showErrors(view, depth, modal, values, errors) {
  ui.viewValues[view.id] = values;
  const fresh = buildModal(view, depth, errors);
  modal.replaceWith(fresh);
  fresh.querySelector(".has-error input, .has-error textarea, .has-error select")?.focus();
}

async function closeModal(view) {
  try {
    await api("/sandbox/close", { view_id: view.id });
  } catch (error) { toast(error.message, "error"); }
}

// -- doing things

async function act(source, element, blockId, payload) {
  try {
    await api("/sandbox/action", {
      ...source, action_id: element.action_id, block_id: blockId, ...payload,
    });
  } catch (error) { toast(error.message, "error"); }
}

function confirm(spec) {
  const dialog = $("#confirm");
  $("#confirm-title").textContent = plainText(spec.title) || "Are you sure?";
  $("#confirm-text").innerHTML = textHtml(spec.text, context());
  $("#confirm-ok").textContent = plainText(spec.confirm) || "Yes";
  $("#confirm-ok").className = `bk-button ${spec.style === "danger" ? "danger" : "primary"}`;
  $("#confirm-deny").textContent = plainText(spec.deny) || "Cancel";
  dialog.returnValue = "";  // Escape closes it with no value: a "no"
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

async function openConversation(id, tab) {
  ui.conv = id;
  ui.tab = tab;
  ui.scrollToEnd = true;
  ui.messagesKey = "";
  ui.homeKey = "";
  await refresh();
  if (tab === "home") await openHome();
}

async function openHome() {
  ui.tab = "home";
  ui.homeKey = "";
  renderHeader();
  try {
    await api("/sandbox/home", {});
  } catch (error) { toast(error.message, "error"); }
  await refresh();
}

async function switchUser(id) {
  // A modal is its person's (Slack keeps a stack per user): it goes with them, typed text
  // and all, and comes back when you are them again.
  stashModal();
  hideModal();
  ui.me = id;
  ui.conv = null;
  ui.tab = "messages";
  ui.homeKey = "";
  ui.messagesKey = "";
  ui.scrollToEnd = true;
  await refresh();
}

// -- the composer

function showComposerError(text) {
  const node = $("#composer-error");
  node.innerHTML = text ? mrkdwn(escapeHtml(text)) : "";
  node.hidden = !text;
}

async function send(event) {
  event?.preventDefault();
  const box = $("#compose");
  const text = box.value.trim();
  if (!text) return;
  hideSuggestions();
  showComposerError("");
  const isCommand = text.startsWith("/");
  try {
    await api(isCommand ? "/sandbox/command" : "/sandbox/message", { channel: ui.conv, text });
    box.value = "";
    autosize();
    ui.scrollToEnd = true;
  } catch (error) {
    showComposerError(error.message);
  }
}

function autosize() {
  const box = $("#compose");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 160)}px`;
}

function currentWord() {
  const box = $("#compose");
  const before = box.value.slice(0, box.selectionStart);
  const match = before.match(/(^|\s)(@[\w.\-]*)$/);
  return match ? { word: match[2], start: before.length - match[2].length } : null;
}

function updateSuggestions() {
  const box = $("#compose");
  const value = box.value;
  const commandMatch = value.match(/^\/([\w\-]*)$/);
  let items = [];
  let kind = null;
  if (commandMatch) {
    kind = "command";
    items = ui.state.commands
      .filter((c) => c.command.slice(1).startsWith(commandMatch[1]))
      .map((c) => ({
        insert: `${c.command} `,
        html: `<b>${escapeHtml(c.command)}</b> <span class="usage">${escapeHtml(c.usage_hint)}</span>`
          + `<div class="desc">${escapeHtml(c.description)}</div>`,
      }));
  } else {
    const word = currentWord();
    if (word) {
      kind = "mention";
      const prefix = word.word.slice(1).toLowerCase();
      items = ui.state.people
        .filter((p) => p.name.startsWith(prefix) || p.real_name.toLowerCase().includes(prefix))
        .map((p) => ({
          insert: `@${p.name} `,
          start: word.start,
          html: `<b>${escapeHtml(p.real_name)}</b> <span class="usage">@${escapeHtml(p.name)}`
            + `${p.title ? ` · ${escapeHtml(p.title)}` : ""}</span>`,
        }));
    }
  }
  ui.suggestion = { items, index: 0, kind };
  const list = $("#suggestions");
  list.replaceChildren();
  list.hidden = !items.length;
  items.forEach((item, index) => {
    const option = document.createElement("div");
    option.className = `suggestion${index === 0 ? " selected" : ""}`;
    option.setAttribute("role", "option");
    option.innerHTML = item.html;
    option.addEventListener("mousedown", (event) => {
      event.preventDefault();
      pick(index);
    });
    list.append(option);
  });
}

function hideSuggestions() {
  ui.suggestion = { items: [], index: 0, kind: null };
  $("#suggestions").hidden = true;
}

function pick(index) {
  const item = ui.suggestion.items[index];
  if (!item) return;
  const box = $("#compose");
  if (ui.suggestion.kind === "command") {
    box.value = item.insert;
  } else {
    const end = box.selectionStart;
    box.value = box.value.slice(0, item.start) + item.insert + box.value.slice(end);
    const caret = item.start + item.insert.length;
    box.setSelectionRange(caret, caret);
  }
  hideSuggestions();
  box.focus();
}

function moveSelection(step) {
  const { items } = ui.suggestion;
  ui.suggestion.index = (ui.suggestion.index + step + items.length) % items.length;
  [...$("#suggestions").children].forEach((node, index) =>
    node.classList.toggle("selected", index === ui.suggestion.index));
}

function onKey(event) {
  const open = ui.suggestion.items.length > 0;
  if (open && event.key === "ArrowDown") { event.preventDefault(); moveSelection(1); return; }
  if (open && event.key === "ArrowUp") { event.preventDefault(); moveSelection(-1); return; }
  if (open && (event.key === "Tab" || (event.key === "Enter" && !event.shiftKey))) {
    event.preventDefault();
    pick(ui.suggestion.index);
    return;
  }
  if (open && event.key === "Escape") { hideSuggestions(); return; }
  if (event.key === "Enter" && !event.shiftKey) send(event);
}

// -- the clock

async function step(name, button) {
  const note = $("#clock-note");
  document.querySelectorAll(".clock-buttons button").forEach((b) => { b.disabled = true; });
  note.textContent = "Moving the clock and running the due jobs…";
  try {
    const answer = await api("/sandbox/clock", { step: name });
    const when = formatWhen(new Date(answer.now), me().tz, {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    });
    const ran = answer.jobs.map((j) => j.errors ? `${j.name} (failed)` : j.name).join(", ");
    note.textContent = [
      `Now ${when}.`,
      ran ? `Ran ${ran} at ${answer.stops} stop${answer.stops === 1 ? "" : "s"}.` : "",
      `${answer.sent} message${answer.sent === 1 ? "" : "s"} sent.`,
      answer.note,
    ].filter(Boolean).join(" ");
  } catch (error) {
    note.textContent = error.message;
  } finally {
    document.querySelectorAll(".clock-buttons button").forEach((b) => { b.disabled = false; });
    button?.blur();
  }
  await refresh();
}

// -- start

function readLocation() {
  const [, user, conv, tab] = location.hash.split("/");
  if (user) ui.me = user;
  if (conv) ui.conv = conv;
  if (tab === "home" || tab === "messages") ui.tab = tab;
}

async function start() {
  readLocation();
  $("#who").addEventListener("change", (event) => switchUser(event.target.value));
  $("#tab-home").addEventListener("click", () => openHome());
  $("#tab-messages").addEventListener("click", () => openConversation(ui.conv, "messages"));
  $("#composer").addEventListener("submit", send);
  const box = $("#compose");
  box.addEventListener("keydown", onKey);
  box.addEventListener("input", () => { autosize(); updateSuggestions(); });
  box.addEventListener("click", updateSuggestions);
  box.addEventListener("blur", () => setTimeout(hideSuggestions, 150));
  document.querySelectorAll(".clock-buttons button").forEach((button) =>
    button.addEventListener("click", () => step(button.dataset.step, button)));
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".msg-actions, .bk-overflow")) {
      document.querySelectorAll(".bk-menu").forEach((m) => { m.hidden = true; });
    }
    const link = event.target.closest("a[href]");
    const host = ui.state?.permalink_host;
    if (link && host && link.href.startsWith(host)) {
      event.preventDefault();
      const match = link.href.match(/archives\/([A-Z0-9]+)\/p(\d+)/);
      if (match) openConversation(match[1], "messages");
    }
  });
  try {
    await refresh();
  } catch (error) {
    toast(`The sandbox did not answer: ${error.message}`, "error");
  }
  if (ui.tab === "home" && isApp()) await openHome();
  listen();
  document.body.dataset.ready = "true";
}

start();
