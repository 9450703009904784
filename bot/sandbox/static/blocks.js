// Block Kit and mrkdwn, rendered the way Slack's client shows them (a faithful subset).
// Everything the bot sent is data: text is escaped, links must be http(s) or mailto.

const EMOJI = {
  tada: "🎉", white_check_mark: "✅", heavy_check_mark: "✔️", warning: "⚠️", x: "❌",
  wave: "👋", rocket: "🚀", bulb: "💡", memo: "📝", calendar: "📅", date: "📅",
  chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉", bar_chart: "📊",
  star: "⭐", thumbsup: "👍", "+1": "👍", thumbsdown: "👎", heart: "❤️", eyes: "👀",
  clap: "👏", fire: "🔥", sparkles: "✨", dart: "🎯", trophy: "🏆", hourglass: "⌛",
  hourglass_flowing_sand: "⏳", bell: "🔔", speech_balloon: "💬", link: "🔗", lock: "🔒",
  seedling: "🌱", muscle: "💪", raised_hands: "🙌", red_circle: "🔴",
  large_blue_circle: "🔵", blue_circle: "🔵", white_circle: "⚪", large_green_circle: "🟢",
  large_yellow_circle: "🟡", exclamation: "❗", question: "❓", pushpin: "📌",
  clipboard: "📋", mag: "🔍", busts_in_silhouette: "👥", bust_in_silhouette: "👤",
  handshake: "🤝", compass: "🧭", north_star: "⭐", calendar_spiral: "🗓️", zzz: "💤",
  palm_tree: "🌴", spiral_note_pad: "🗒️", inbox_tray: "📥", outbox_tray: "📤",
  arrow_right: "➡️", arrow_up: "⬆️", arrow_down: "⬇️", slightly_smiling_face: "🙂",
  smile: "😄", pray: "🙏", no_entry: "⛔", stopwatch: "⏱️", alarm_clock: "⏰",
  construction: "🚧", triangular_flag_on_post: "🚩", medal: "🏅", sports_medal: "🏅",
};

export function escapeHtml(text) {
  return String(text ?? "")
    .replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

function decodeEntities(text) {
  return text.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

export function emojify(html) {
  return html.replace(/:([a-z0-9_+\-]+):/g, (whole, name) => EMOJI[name] ?? whole);
}

export function safeUrl(url) {
  return /^(https?:|mailto:)/i.test(url) ? url : null;
}

// Where an image comes from: its image_url, or an uploaded file (slack_file by id or by the
// file's url), which the sandbox's page serves from its local Slack.
export function imageSource(image) {
  const file = image?.slack_file;
  if (file) {
    const id = file.id || /\/files\/(F[A-Z0-9]+)\//.exec(file.url || "")?.[1];
    return id ? `/sandbox/files/${encodeURIComponent(id)}` : "";
  }
  return safeUrl(image?.image_url || "") || "";
}

function personName(ctx, id, fallback) {
  const person = ctx.people?.get(id);
  return person ? person.real_name : fallback || id;
}

function control(inner, ctx) {
  const [target, label] = splitOnce(inner, "|");
  if (target.startsWith("@")) {
    const id = target.slice(1);
    return `<span class="mention" data-user="${escapeHtml(id)}">@${escapeHtml(
      personName(ctx, id, label))}</span>`;
  }
  if (target.startsWith("#")) {
    const id = target.slice(1);
    const name = ctx.channels?.get(id) || label || id;
    return `<span class="mention">#${escapeHtml(name)}</span>`;
  }
  if (target.startsWith("!")) {
    const [kind, ...rest] = target.slice(1).split("^");
    if (kind === "date") return escapeHtml(label || rest[rest.length - 1] || "");
    if (kind.startsWith("subteam")) return `<span class="mention">${escapeHtml(label || "@group")}</span>`;
    return `<span class="mention">@${escapeHtml(kind)}</span>`;
  }
  const url = safeUrl(decodeEntities(target));
  const text = escapeHtml(decodeEntities(label ?? target));
  if (!url) return text;
  return `<a href="${escapeHtml(url)}" target="_blank" rel="noopener noreferrer">${text}</a>`;
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

// Slack's mrkdwn: *bold*, _italic_, ~strike~, `code`, ```blocks```, > quotes, <links>,
// <@U…> mentions, <#C…> channels, emoji shortcodes and line breaks.
export function mrkdwn(source, ctx = {}) {
  const held = [];
  const hold = (html) => `\u0001${held.push(html) - 1}\u0001`;
  let text = String(source ?? "");
  text = text.replace(/```([\s\S]*?)```/g, (_, code) =>
    hold(`<pre class="code-block">${escapeHtml(decodeEntities(code.replace(/^\n/, "")))}</pre>`));
  text = text.replace(/`([^`\n]+)`/g, (_, code) =>
    hold(`<code>${escapeHtml(decodeEntities(code))}</code>`));
  text = text.replace(/<([^<>\n]+)>/g, (_, inner) => hold(control(inner, ctx)));
  // A raw ">" opening a line quotes it; an escaped one ("&gt;") is just the character.
  text = text.split("\n").map((line) => line.replace(/^>[ ]?/, "\u0002")).join("\n");
  text = escapeHtml(decodeEntities(text));
  text = text.replace(/(^|[^\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])/g, "$1<b>$2</b>");
  text = text.replace(/(^|[^\w])_(?!\s)([^_\n]+?)_(?!\w)/g, "$1<i>$2</i>");
  text = text.replace(/(^|[^\w~])~(?!\s)([^~\n]+?)~(?![\w~])/g, "$1<s>$2</s>");
  text = text
    .split("\n")
    .map((line) => (line.startsWith("\u0002")
      ? `<span class="quote">${line.slice(1)}</span>` : line))
    .join("\n");
  text = emojify(text).replaceAll("\n", "<br>");
  return text.replace(/\u0001(\d+)\u0001/g, (_, index) => held[Number(index)]);
}

export function textHtml(object, ctx) {
  if (object == null) return "";
  if (typeof object === "string") return mrkdwn(object, ctx);
  if (object.type === "mrkdwn") return mrkdwn(object.text, ctx);
  const html = escapeHtml(object.text).replaceAll("\n", "<br>");
  return object.emoji === false ? html : emojify(html);
}

export function plainText(object) {
  if (object == null) return "";
  return typeof object === "string" ? object : String(object.text ?? "");
}

function el(tag, className, html) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (html !== undefined) node.innerHTML = html;
  return node;
}

function optionsOf(element) {
  const options = [...(element.options || [])];
  for (const group of element.option_groups || []) options.push(...(group.options || []));
  return options;
}

function fillOptions(select, element, { placeholder = true } = {}) {
  if (placeholder && !select.multiple) {
    const none = el("option", "", escapeHtml(plainText(element.placeholder) || "Select an option"));
    none.value = "";
    select.append(none);
  }
  const add = (parent, option) => {
    const node = el("option", "", emojify(escapeHtml(plainText(option.text))));
    node.value = option.value;
    parent.append(node);
  };
  for (const option of element.options || []) add(select, option);
  for (const group of element.option_groups || []) {
    const node = document.createElement("optgroup");
    node.label = plainText(group.label);
    for (const option of group.options || []) add(node, option);
    select.append(node);
  }
}

function fillPeople(select, ctx, element, multiple) {
  if (!multiple) {
    const none = el("option", "", escapeHtml(plainText(element.placeholder) || "Select a person"));
    none.value = "";
    select.append(none);
  }
  for (const person of ctx.people?.values() || []) {
    const node = el("option", "", escapeHtml(`${person.real_name} (@${person.name})`));
    node.value = person.id;
    select.append(node);
  }
}

function fillChannels(select, ctx, element, multiple) {
  if (!multiple) {
    const none = el("option", "", escapeHtml(plainText(element.placeholder) || "Select a channel"));
    none.value = "";
    select.append(none);
  }
  for (const [id, name] of ctx.channels || []) {
    const node = el("option", "", `#${escapeHtml(name)}`);
    node.value = id;
    select.append(node);
  }
}

const SELECTS = {
  static_select: { fill: fillOptions, multiple: false, initial: (e) => e.initial_option?.value },
  external_select: { fill: fillOptions, multiple: false, initial: (e) => e.initial_option?.value },
  multi_static_select: {
    fill: fillOptions, multiple: true, initial: (e) => (e.initial_options || []).map((o) => o.value),
  },
  users_select: { fill: fillPeople, multiple: false, initial: (e) => e.initial_user },
  multi_users_select: { fill: fillPeople, multiple: true, initial: (e) => e.initial_users || [] },
  conversations_select: {
    fill: fillChannels, multiple: false, initial: (e) => e.initial_conversation,
  },
  channels_select: { fill: fillChannels, multiple: false, initial: (e) => e.initial_channel },
  multi_conversations_select: {
    fill: fillChannels, multiple: true, initial: (e) => e.initial_conversations || [],
  },
  multi_channels_select: {
    fill: fillChannels, multiple: true, initial: (e) => e.initial_channels || [],
  },
};

const TEXT_INPUTS = {
  plain_text_input: "text", url_text_input: "url", email_text_input: "email",
  number_input: "text", datepicker: "date", timepicker: "time", rich_text_input: "text",
};

// An interactive element. `where`: "input" (a modal's input block, value read on submit) or
// "action" (a click or a change sends a block action at once).
function renderElement(element, block, ctx, where, initial) {
  const kind = element.type;
  const blockId = block.block_id || "";
  const send = (payload) => ctx.onAction?.(element, blockId, payload);
  const wrap = el("span", `bk-el bk-${kind}`);
  wrap.dataset.kind = kind;
  wrap.dataset.actionId = element.action_id || "";
  wrap.dataset.blockId = blockId;
  const dispatches = where === "action" || block.dispatch_action;

  if (kind === "button") {
    const button = el("button", `bk-button ${element.style || ""}`.trim(),
      emojify(escapeHtml(plainText(element.text))));
    button.type = "button";
    button.dataset.actionId = element.action_id || "";
    if (element.accessibility_label) button.setAttribute("aria-label", element.accessibility_label);
    button.addEventListener("click", async () => {
      if (element.confirm && !(await ctx.confirm(element.confirm))) return;
      const url = element.url && safeUrl(element.url);
      if (url) window.open(url, "_blank", "noopener");
      send({});
    });
    return button;
  }
  if (kind === "overflow") {
    const toggle = el("button", "bk-overflow-toggle", "⋯");
    toggle.type = "button";
    toggle.setAttribute("aria-label", "More actions");
    const menu = el("div", "bk-menu");
    menu.hidden = true;
    for (const option of element.options || []) {
      const item = el("button", "bk-menu-item", emojify(escapeHtml(plainText(option.text))));
      item.type = "button";
      item.addEventListener("click", async () => {
        menu.hidden = true;
        if (element.confirm && !(await ctx.confirm(element.confirm))) return;
        const url = option.url && safeUrl(option.url);
        if (url) window.open(url, "_blank", "noopener");
        send({ value: option.value });
      });
      menu.append(item);
    }
    toggle.addEventListener("click", () => { menu.hidden = !menu.hidden; });
    wrap.append(toggle, menu);
    return wrap;
  }
  if (kind === "image") {
    const image = el("img", "bk-accessory-image");
    image.src = imageSource(element);
    image.alt = element.alt_text || "";
    return image;
  }
  if (SELECTS[kind]) {
    const spec = SELECTS[kind];
    const select = document.createElement("select");
    select.multiple = spec.multiple;
    if (spec.fill === fillOptions) fillOptions(select, element);
    else spec.fill(select, ctx, element, spec.multiple);
    const chosen = initial !== undefined ? initial : spec.initial(element);
    const wanted = new Set([].concat(chosen ?? []));
    for (const option of select.options) option.selected = wanted.has(option.value);
    if (spec.multiple) select.size = Math.min(6, Math.max(3, select.options.length));
    if (dispatches) {
      select.addEventListener("change", async () => {
        if (element.confirm && !(await ctx.confirm(element.confirm))) return;
        if (spec.multiple) send({ selected: [...select.selectedOptions].map((o) => o.value) });
        else if (select.value) send({ value: select.value });
      });
    }
    wrap.append(select);
    return wrap;
  }
  if (kind === "checkboxes" || kind === "radio_buttons") {
    const name = `${blockId}-${element.action_id}-${Math.random().toString(36).slice(2, 8)}`;
    const wanted = new Set([].concat(initial !== undefined ? initial ?? [] :
      kind === "checkboxes" ? (element.initial_options || []).map((o) => o.value)
        : element.initial_option?.value ?? []));
    for (const option of element.options || []) {
      const label = el("label", "bk-choice");
      const box = document.createElement("input");
      box.type = kind === "checkboxes" ? "checkbox" : "radio";
      box.name = name;
      box.value = option.value;
      box.checked = wanted.has(option.value);
      const text = el("span", "", textHtml(option.text, ctx));
      label.append(box, text);
      if (option.description) label.append(el("small", "bk-hint", textHtml(option.description, ctx)));
      if (dispatches) {
        box.addEventListener("change", () => {
          const picked = [...wrap.querySelectorAll("input:checked")].map((i) => i.value);
          send(kind === "checkboxes" ? { selected: picked } : { value: picked[0] });
        });
      }
      wrap.append(label);
    }
    return wrap;
  }
  if (TEXT_INPUTS[kind]) {
    const multiline = kind === "plain_text_input" && element.multiline || kind === "rich_text_input";
    const field = document.createElement(multiline ? "textarea" : "input");
    if (!multiline) field.type = TEXT_INPUTS[kind];
    if (kind === "number_input") field.inputMode = element.is_decimal_allowed ? "decimal" : "numeric";
    if (element.placeholder) field.placeholder = plainText(element.placeholder);
    if (element.max_length) field.maxLength = element.max_length;
    const start = initial !== undefined ? initial
      : kind === "datepicker" ? element.initial_date
        : kind === "timepicker" ? element.initial_time
          : kind === "rich_text_input" ? richPlain(element.initial_value) : element.initial_value;
    if (start != null) field.value = start;
    if (element.focus_on_load) field.autofocus = true;
    field.setAttribute("aria-label", plainText(block.label) || element.action_id || kind);
    if (dispatches) {
      const event = ["datepicker", "timepicker"].includes(kind) ? "change" : null;
      if (event) field.addEventListener(event, () => field.value && send({ value: field.value }));
      else field.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send({ value: field.value }); }
      });
    }
    wrap.append(field);
    return wrap;
  }
  return el("span", "bk-unsupported", `[${escapeHtml(kind)}]`);
}

function richPlain(value) {
  if (!value) return "";
  const out = [];
  const walk = (node) => {
    if (node?.type === "text") out.push(node.text);
    (node?.elements || []).forEach(walk);
  };
  walk(value);
  return out.join("");
}

function renderRichText(block, ctx) {
  const node = el("div", "bk-rich-text");
  const inline = (items) => (items || []).map((item) => {
    if (item.type === "text") {
      let html = escapeHtml(item.text).replaceAll("\n", "<br>");
      const style = item.style || {};
      if (style.code) html = `<code>${html}</code>`;
      if (style.bold) html = `<b>${html}</b>`;
      if (style.italic) html = `<i>${html}</i>`;
      if (style.strike) html = `<s>${html}</s>`;
      return html;
    }
    if (item.type === "link") return control(`${item.url}|${item.text || item.url}`, ctx);
    if (item.type === "user") return control(`@${item.user_id}`, ctx);
    if (item.type === "channel") return control(`#${item.channel_id}`, ctx);
    if (item.type === "emoji") return EMOJI[item.name] || `:${escapeHtml(item.name)}:`;
    return "";
  }).join("");
  for (const part of block.elements || []) {
    if (part.type === "rich_text_section") node.append(el("div", "", inline(part.elements)));
    else if (part.type === "rich_text_quote") node.append(el("div", "quote", inline(part.elements)));
    else if (part.type === "rich_text_preformatted") {
      node.append(el("pre", "code-block", inline(part.elements)));
    } else if (part.type === "rich_text_list") {
      const list = el(part.style === "ordered" ? "ol" : "ul");
      for (const item of part.elements || []) list.append(el("li", "", inline(item.elements)));
      node.append(list);
    }
  }
  return node;
}

function renderInput(block, ctx) {
  const node = el("div", "bk-input");
  node.dataset.blockId = block.block_id || "";
  const label = el("label", "bk-label", escapeHtml(plainText(block.label)));
  if (block.optional) label.append(el("span", "bk-optional", " (optional)"));
  node.append(label);
  const element = block.element || {};
  const initial = ctx.values?.[block.block_id]?.[element.action_id];
  const control = renderElement(element, block, ctx, "input", initial);
  control.classList.add("bk-input-el");
  control.dataset.optional = block.optional ? "1" : "";
  node.append(control);
  if (block.hint) node.append(el("div", "bk-hint", escapeHtml(plainText(block.hint))));
  const error = el("div", "bk-error");
  error.setAttribute("role", "alert");
  const message = ctx.errors?.[block.block_id];
  if (message) {
    error.textContent = message;
    node.classList.add("has-error");
  }
  node.append(error);
  return node;
}

export function renderBlock(block, ctx) {
  switch (block.type) {
    case "header":
      return el("div", "bk-header", emojify(escapeHtml(plainText(block.text))));
    case "divider":
      return el("hr", "bk-divider");
    case "section": {
      const node = el("div", "bk-section");
      const main = el("div", "bk-section-main");
      if (block.text) main.append(el("div", "bk-text", textHtml(block.text, ctx)));
      if (block.fields?.length) {
        const fields = el("div", "bk-fields");
        for (const field of block.fields) fields.append(el("div", "bk-field", textHtml(field, ctx)));
        main.append(fields);
      }
      node.append(main);
      if (block.accessory) {
        const accessory = el("div", "bk-accessory");
        accessory.append(renderElement(block.accessory, block, ctx, "action"));
        node.append(accessory);
      }
      return node;
    }
    case "context": {
      const node = el("div", "bk-context");
      for (const item of block.elements || []) {
        if (item.type === "image") {
          const image = el("img", "bk-context-image");
          image.src = imageSource(item);
          image.alt = item.alt_text || "";
          node.append(image);
        } else {
          node.append(el("span", "", textHtml(item, ctx)));
        }
      }
      return node;
    }
    case "image": {
      const node = el("figure", "bk-image");
      if (block.title) node.append(el("figcaption", "", escapeHtml(plainText(block.title))));
      const image = el("img");
      image.src = imageSource(block);
      image.alt = block.alt_text || "";
      node.append(image);
      return node;
    }
    case "actions": {
      const node = el("div", "bk-actions");
      node.dataset.blockId = block.block_id || "";
      for (const element of block.elements || []) {
        node.append(renderElement(element, block, ctx, "action"));
      }
      return node;
    }
    case "input":
      return renderInput(block, ctx);
    case "rich_text":
      return renderRichText(block, ctx);
    case "markdown":
      return el("div", "bk-text", mrkdwn(block.text, ctx));
    default:
      return el("div", "bk-unsupported", `[${escapeHtml(block.type)} block]`);
  }
}

export function renderBlocks(blocks, ctx) {
  const node = el("div", "bk-blocks");
  for (const block of blocks || []) node.append(renderBlock(block, ctx));
  return node;
}

// What a view's input blocks hold: {block_id: {action_id: value}}; value as the sandbox's
// API takes it (a string, an option value, an id, or a list of them; null when empty).
export function readInputs(root) {
  const values = {};
  for (const control of root.querySelectorAll(".bk-input-el")) {
    const { blockId, actionId, kind } = control.dataset;
    values[blockId] = { [actionId]: readControl(control, kind) };
  }
  return values;
}

function readControl(control, kind) {
  if (kind === "checkboxes") {
    return [...control.querySelectorAll("input:checked")].map((i) => i.value);
  }
  if (kind === "radio_buttons") return control.querySelector("input:checked")?.value ?? null;
  const select = control.querySelector("select");
  if (select) {
    if (select.multiple) return [...select.selectedOptions].map((o) => o.value);
    return select.value || null;
  }
  const field = control.querySelector("input, textarea");
  return field && field.value !== "" ? field.value : null;
}

// What Slack's client checks before it sends a submission: {block_id: message}.
export function checkInputs(view, values) {
  const errors = {};
  for (const block of view.blocks || []) {
    if (block.type !== "input") continue;
    const element = block.element || {};
    const value = values[block.block_id]?.[element.action_id];
    const empty = value == null || value === "" || (Array.isArray(value) && !value.length);
    if (empty) {
      if (!block.optional) errors[block.block_id] = "Please complete this required field.";
      continue;
    }
    const problem = checkValue(element, value);
    if (problem) errors[block.block_id] = problem;
  }
  return errors;
}

function checkValue(element, value) {
  const kind = element.type;
  if (kind === "number_input") {
    const number = Number(String(value).trim());
    if (String(value).trim() === "" || !Number.isFinite(number)) return "Please enter a number.";
    if (!element.is_decimal_allowed && !Number.isInteger(number)) {
      return "Please enter a whole number.";
    }
    if (element.min_value != null && number < Number(element.min_value)) {
      return `Please enter a number of at least ${element.min_value}.`;
    }
    if (element.max_value != null && number > Number(element.max_value)) {
      return `Please enter a number no more than ${element.max_value}.`;
    }
  }
  if (kind === "url_text_input" && !/^https?:\/\/\S+\.\S+/i.test(value)) {
    return "Please enter a valid URL.";
  }
  if (kind === "email_text_input" && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) {
    return "Please enter a valid email address.";
  }
  if (kind === "plain_text_input" && element.min_length && value.length < element.min_length) {
    return `Please enter at least ${element.min_length} characters.`;
  }
  if (kind === "multi_static_select" && element.max_selected_items
      && value.length > element.max_selected_items) {
    return `Please select no more than ${element.max_selected_items}.`;
  }
  return null;
}
