// Teamboard's one script: session handling, the pages' behaviour, and a small client for the
// Datastar SSE subset the streamer emits (patch elements by selector and mode, remove, patch
// signals). No framework, no download. All user text reaches the DOM either as server-escaped HTML
// or through textContent.
"use strict";

(() => {
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const page = document.body.dataset.page;
  const params = new URLSearchParams(location.search);

  // ---------------------------------------------------------------- command-api location
  // The server tells us where command-api is ("" = this origin). In development the page may be
  // opened as localhost or 127.0.0.1: use the same spelling so CORS and storage line up.
  const apiBase = (() => {
    const configured = ($('meta[name="command-api"]') || {}).content || "";
    if (!configured) return "";
    try {
      const url = new URL(configured);
      const loopback = ["127.0.0.1", "localhost"];
      if (loopback.includes(url.hostname) && loopback.includes(location.hostname)) url.hostname = location.hostname;
      return url.origin;
    } catch { return configured; }
  })();

  // ---------------------------------------------------------------- toasts
  function toast(message, kind = "info") {
    const box = $("#toasts");
    if (!box) return;
    const item = document.createElement("div");
    item.className = "toast" + (kind === "error" ? " error" : "");
    item.textContent = message;
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 7000 : 4000);
  }

  /// A toast with a button (Undo), gone after `ms`.
  function toastWithAction(message, label, action, ms) {
    const box = $("#toasts");
    if (!box) return () => {};
    const item = document.createElement("div");
    item.className = "toast with-action";
    const text = document.createElement("span");
    text.textContent = message;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button small";
    button.dataset.action = "undo";
    button.textContent = label;
    button.addEventListener("click", () => { item.remove(); action(); });
    item.append(text, button);
    box.append(item);
    const timer = setTimeout(() => item.remove(), ms);
    return () => { clearTimeout(timer); item.remove(); };
  }

  // ---------------------------------------------------------------- session
  // The refresh token lives in an HttpOnly cookie this page never sees (the server sets it when a
  // request says `X-Session-Transport: cookie`); the access token lives in this page's memory
  // only. Every page gets a fresh access token on load and refreshes it a minute before it
  // expires. A refresh rotates the cookie, so refreshes are serialized across tabs (Web Locks);
  // tabs hear of a sign-out on a BroadcastChannel.
  const sessionChannel = "BroadcastChannel" in window ? new BroadcastChannel("teamboard-session") : null;
  const cookieHeaders = { "Content-Type": "application/json", "X-Session-Transport": "cookie" };
  let current = null;
  const Session = {
    get() { return current; },
    save(auth) {
      current = {
        access_token: auth.access_token, expires_at: Date.now() + (auth.expires_in || 900) * 1000,
        user_id: auth.user_id, username: auth.username,
      };
      scheduleRefresh();
      return current;
    },
    clear() { current = null; clearTimeout(refreshTimer); },
  };

  let refreshTimer = null;
  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (!current) return;
    const wait = Math.max(1000, current.expires_at - Date.now() - 60_000);
    refreshTimer = setTimeout(() => refresh().catch(() => {}), wait);
  }

  async function withRefreshLock(body) {
    if (navigator.locks && navigator.locks.request) return navigator.locks.request("teamboard-refresh", body);
    return body();
  }

  /// Exchanges the cookie for a new access token; null when there is no session (401).
  async function exchange() {
    const response = await fetch(apiBase + "/api/v1/auth/refresh", {
      method: "POST", credentials: "include", headers: cookieHeaders, body: "{}",
    });
    if (response.status === 401) { Session.clear(); return null; }
    if (!response.ok) throw new Error("refresh failed (" + response.status + ")");
    return Session.save(await response.json());
  }

  /// The session of this page load, from the cookie (null when signed out).
  async function resume() {
    try { return await withRefreshLock(exchange); } catch { return null; }
  }

  /// A fresh access token (refreshing first when it expires within a minute).
  async function refresh(force = false) {
    return withRefreshLock(async () => {
      if (!force && current && current.expires_at - Date.now() > 60_000) { scheduleRefresh(); return current.access_token; }
      const session = await exchange();
      if (!session) { toLogin(); throw new Error("session ended"); }
      return session.access_token;
    });
  }

  async function accessToken() {
    if (!current || current.expires_at - Date.now() < 60_000) return refresh();
    return current.access_token;
  }

  function toLogin() {
    const next = location.pathname + location.search;
    location.replace("/login" + (next && next !== "/" && !next.startsWith("/login") ? "?next=" + encodeURIComponent(next) : ""));
  }

  /// Where to go after signing in: `?next=` only when it is a path of this site.
  function nextPath() {
    const next = params.get("next") || "";
    try {
      const url = new URL(next, location.origin);
      const path = url.pathname + url.search + url.hash;
      // "/.//evil.example" resolves to the path "//evil.example", which a browser reads as another host.
      if (next.startsWith("/") && url.origin === location.origin && !path.startsWith("//") && !path.startsWith("/\\")) return path;
    } catch { /* not a URL */ }
    return "/app";
  }

  /// fetch with the bearer token; one refresh and retry on 401.
  async function authorized(url, options = {}) {
    const send = async (token) => fetch(url, { ...options, headers: { ...(options.headers || {}), Authorization: "Bearer " + token } });
    let response = await send(await accessToken());
    if (response.status === 401) response = await send(await refresh(true));
    return response;
  }

  async function errorMessage(response) {
    let message = "";
    try { message = (await response.json()).error || ""; } catch { /* not JSON */ }
    if (response.status === 429) {
      const wait = response.headers.get("Retry-After");
      return "Too many attempts. Try again" + (wait ? " in " + wait + " s." : " shortly.");
    }
    return message || "Something went wrong (" + response.status + ").";
  }

  async function api(method, path, body, extraHeaders = {}) {
    const response = await authorized(apiBase + path, {
      method, headers: { "Content-Type": "application/json", ...extraHeaders },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    return response.status === 204 ? null : response.json();
  }

  async function fragment(path) {
    const response = await authorized(path);
    if (!response.ok) {
      const error = new Error(await errorMessage(response));
      error.status = response.status;
      throw error;
    }
    return response.text();
  }

  async function logout(everywhere = false) {
    try {
      if (everywhere) await api("POST", "/api/v1/auth/logout-everywhere", {});
      else await fetch(apiBase + "/api/v1/auth/logout", { method: "POST", credentials: "include", headers: cookieHeaders, body: "{}" });
    } catch { /* signed out locally either way */ }
    Session.clear();
    sessionChannel?.postMessage("signed-out");
    location.replace("/login");
  }

  sessionChannel?.addEventListener("message", (event) => {
    if (event.data === "signed-out" && document.body.dataset.auth === "required") { Session.clear(); toLogin(); }
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && Session.get()) accessToken().catch(() => {});
  });

  // ---------------------------------------------------------------- Datastar subset
  // Parses a text/event-stream body read with fetch (so the token goes in a header, never the URL).
  async function readEvents(response, onEvent) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: [], id: null };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (event.data.length || event.type !== "message") onEvent(event);
          event = { type: "message", data: [], id: null };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") event.type = text;
        else if (field === "data") event.data.push(text);
        else if (field === "id") event.id = text;
      }
    }
  }

  const signals = {};
  const Datastar = {
    /// `datastar-patch-elements`: data lines `selector`, `mode`, `elements` (repeated).
    patchElements(dataLines) {
      let selector = null, mode = "outer";
      const html = [];
      for (const line of dataLines) {
        const space = line.indexOf(" ");
        const key = space < 0 ? line : line.slice(0, space);
        const rest = space < 0 ? "" : line.slice(space + 1);
        if (key === "selector") selector = rest;
        else if (key === "mode") mode = rest;
        else if (key === "elements") html.push(rest);
      }
      const template = document.createElement("template");
      template.innerHTML = html.join("\n");
      const elements = Array.from(template.content.children);
      if (mode === "remove") {
        if (selector) $$(selector).forEach((element) => element.remove());
        elements.forEach((element) => element.id && document.getElementById(element.id)?.remove());
        return;
      }
      if (mode === "outer" && !selector) {
        for (const element of elements) document.getElementById(element.id)?.replaceWith(element);
        if (elements.some((element) => element.id === "bell-count")) document.dispatchEvent(new CustomEvent("teamboard:bell"));
        return;
      }
      const target = selector ? $(selector) : null;
      if (!target) return;
      // An element that already exists (by id) is replaced, not duplicated: an optimistic card,
      // or a patch replayed after a reconnect.
      for (const element of elements) if (element.id) document.getElementById(element.id)?.remove();
      switch (mode) {
        case "outer": target.replaceWith(...elements); break;
        case "inner": target.replaceChildren(...elements); break;
        case "replace": target.replaceWith(...elements); break;
        case "prepend": target.prepend(...elements); break;
        case "append": target.append(...elements); break;
        case "before": target.before(...elements); break;
        case "after": target.after(...elements); break;
      }
    },
    /// `datastar-patch-signals`: `signals {json}`; elements with data-signal="name" show the value.
    patchSignals(dataLines) {
      const json = dataLines.filter((line) => line.startsWith("signals ")).map((line) => line.slice(8)).join("\n");
      if (!json) return;
      let patch;
      try { patch = JSON.parse(json); } catch { return; }
      Object.assign(signals, patch);
      document.dispatchEvent(new CustomEvent("teamboard:signals", { detail: patch }));
      for (const element of $$("[data-signal]")) {
        const value = signals[element.dataset.signal];
        if (value !== undefined) element.textContent = String(value);
      }
    },
  };

  // ---------------------------------------------------------------- page: login
  function initLogin() {
    resume().then((session) => { if (session) location.replace(nextPath()); });
    const form = $("#auth-form");
    const error = $("#auth-error");
    const setMode = (mode) => {
      form.dataset.mode = mode;
      error.textContent = "";
      $("#password").autocomplete = mode === "login" ? "current-password" : "new-password";
      document.title = (mode === "login" ? "Sign in" : "Create account") + " · Teamboard";
      $("#username").focus();
    };
    $('[data-action="show-register"]').addEventListener("click", () => setMode("register"));
    $('[data-action="show-login"]').addEventListener("click", () => setMode("login"));
    if (location.hash === "#register") setMode("register");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const username = $("#username").value.trim();
      const password = $("#password").value;
      const register = form.dataset.mode === "register";
      if (!/^[A-Za-z0-9_.-]{3,32}$/.test(username)) { error.textContent = "Usernames are 3–32 letters, digits, '.', '_' or '-'."; return; }
      if (password.length < 8) { error.textContent = "Passwords have at least 8 characters."; return; }
      const buttons = $$("button[type=submit]", form);
      buttons.forEach((button) => (button.disabled = true));
      try {
        const response = await fetch(apiBase + "/api/v1/auth/" + (register ? "register" : "login"), {
          method: "POST", credentials: "include", headers: cookieHeaders, body: JSON.stringify({ username, password }),
        });
        if (response.ok) {
          location.replace(nextPath());
          return;
        }
        if (response.status === 401) error.textContent = "Wrong username or password.";
        else if (response.status === 409) error.textContent = "That username is taken. Pick another one, or sign in.";
        else error.textContent = await errorMessage(response);
      } catch {
        error.textContent = "The server cannot be reached. Check your connection and try again.";
      } finally {
        buttons.forEach((button) => (button.disabled = false));
      }
    });
  }

  // ---------------------------------------------------------------- search
  // The header's search box: results as you type (the caller's groups only), `/` focuses it,
  // arrow keys move through the results, Enter opens the todo on its board.
  function initSearch() {
    const input = $("#search"), list = $("#search-results");
    if (!input || !list) return;
    let results = [], active = -1, timer = null, asked = 0;
    const close = () => { list.hidden = true; input.setAttribute("aria-expanded", "false"); active = -1; };
    const open = (result) => location.assign("/app?group=" + encodeURIComponent(result.group_id) + "&todo=" + encodeURIComponent(result.todo_id));
    const mark = () => $$("li", list).forEach((item, index) => {
      item.setAttribute("aria-selected", String(index === active));
      if (index === active) { input.setAttribute("aria-activedescendant", item.id); item.scrollIntoView({ block: "nearest" }); }
    });
    const render = () => {
      list.replaceChildren();
      results.forEach((result, index) => {
        const item = document.createElement("li");
        item.id = "search-result-" + index;
        item.setAttribute("role", "option");
        const title = document.createElement("strong");
        title.textContent = result.title;
        const where = document.createElement("small");
        where.textContent = result.group_name + " · " + result.status.replace("_", " ");
        item.append(title, where);
        if (result.snippet) { const snippet = document.createElement("span"); snippet.textContent = result.snippet; item.append(snippet); }
        item.addEventListener("mousedown", (event) => { event.preventDefault(); open(result); });
        list.append(item);
      });
      if (!results.length && input.value.trim()) {
        const empty = document.createElement("li");
        empty.className = "empty";
        empty.textContent = "No todo matches.";
        list.append(empty);
      }
      list.hidden = !input.value.trim();
      input.setAttribute("aria-expanded", String(!list.hidden));
      active = results.length ? 0 : -1;
      mark();
    };
    const ask = async () => {
      const q = input.value.trim();
      if (!q) { results = []; close(); return; }
      const ticket = ++asked;
      try {
        const response = await authorized("/api/v1/search?limit=8&q=" + encodeURIComponent(q));
        if (!response.ok) throw new Error(await errorMessage(response));
        const body = await response.json();
        if (ticket !== asked) return; // a later question is on its way
        results = body.results;
        render();
      } catch (error) { toast(error.message, "error"); }
    };
    input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(ask, 150); });
    input.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!results.length) return;
        active = (active + (event.key === "ArrowDown" ? 1 : results.length - 1)) % results.length;
        mark();
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (active >= 0 && results[active]) open(results[active]);
      } else if (event.key === "Escape") {
        close();
        input.blur();
      }
    });
    input.addEventListener("blur", () => setTimeout(close, 100));
    input.addEventListener("focus", () => { if (input.value.trim() && results.length) render(); });
    document.addEventListener("keydown", (event) => {
      const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
      if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) { event.preventDefault(); input.focus(); }
    });
  }

  // ---------------------------------------------------------------- shared chrome
  function initChrome() {
    const session = Session.get();
    if (!session) { toLogin(); return false; }
    document.body.dataset.userId = session.user_id;
    $$("[data-username]").forEach((element) => { if (!element.closest("main")) element.textContent = session.username; });
    $$("[data-initials]").forEach((element) => (element.textContent = session.username.slice(0, 2).toUpperCase()));
    $$('[data-action="logout"]').forEach((button) => button.addEventListener("click", () => logout()));
    const group = params.get("group");
    if (group) $$("a[data-keep-group]").forEach((link) => (link.href = link.pathname + "?group=" + encodeURIComponent(group)));
    scheduleRefresh();
    initSearch();
    initNotifications();
    document.body.classList.add("ready");
    return true;
  }

  async function load(main, path) {
    try {
      main.innerHTML = await fragment(path);
      return true;
    } catch (error) {
      if (error.status === 403 || error.status === 404) {
        main.innerHTML = "";
        const note = document.createElement("p");
        note.className = "notice";
        note.textContent = error.message + " ";
        const back = document.createElement("a");
        back.href = "/app";
        back.textContent = "Back to your groups";
        note.append(back);
        main.append(note);
      } else toast(error.message, "error");
      return false;
    }
  }

  // ---------------------------------------------------------------- page: groups overview
  async function initOverview(main) {
    $("#page-title").textContent = "Groups";
    if (!(await load(main, "/ui/overview"))) return;
    $('[data-action="focus-new-group"]')?.addEventListener("click", () => $("#new-group-name")?.focus());
    // Widths come from the values (the page's policy allows no inline styles).
    $$(".progress[aria-valuenow] > span", main).forEach((bar) => (bar.style.width = bar.parentElement.getAttribute("aria-valuenow") + "%"));
    $('form[data-action="create-group"]', main).addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = event.target.name.value.trim();
      if (!name) return;
      try {
        const group = await api("POST", "/api/v1/groups", { name });
        location.assign("/app?group=" + encodeURIComponent(group.id));
      } catch (error) { toast(error.message, "error"); }
    });
  }

  // ---------------------------------------------------------------- page: group workspace
  function newID() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function initWorkspace(main, groupID) {
    $(".topbar-actions").replaceChildren();
    if (!(await load(main, "/ui/workspace?group_id=" + encodeURIComponent(groupID)))) return;
    const workspace = $("#workspace");
    const session = Session.get();
    const me = { id: session.user_id, name: session.username, role: workspace.dataset.role };
    $("#page-title").textContent = workspace.dataset.groupName;
    document.title = workspace.dataset.groupName + " · Teamboard";
    const board = new Board(workspace, groupID, me);
    board.start(Number(workspace.dataset.version) || 0);
    // Opened from a search result: show that todo.
    const wanted = params.get("todo");
    const card = wanted && $$(".card[data-todo-id]", workspace).find((candidate) => candidate.dataset.todoId === wanted);
    if (card) { card.scrollIntoView({ block: "center" }); board.openDialog(card); }
    else if (wanted) toast("That todo is no longer on the board.", "error");
  }

  class Board {
    constructor(root, groupID, me) {
      this.root = root;
      this.groupID = groupID;
      this.me = me;
      this.pending = new Map();    // command_id → { rollback, label }
      this.outcomes = new Map();   // command_id → event, for outcomes that beat the 202
      this.lastID = 0;
      this.ended = false;
      this.reminders = new Map();  // todo_id → the viewer's own reminder on it
      this.wire();
      this.recount();
    }

    start(version) {
      this.lastID = version;
      this.online = [];
      // Who else is here: now from the read API, then live from the stream's signals.
      document.addEventListener("keydown", (event) => {
        const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
        if (event.defaultPrevented || document.querySelector("dialog[open]")) return;
        if ((event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey && event.key.toLowerCase() === "z" && !typing) {
          if (this.undoLast()) event.preventDefault();
        }
      });
      document.addEventListener("teamboard:signals", (event) => {
        if (Array.isArray(event.detail.online)) { this.online = event.detail.online; this.showPresence(); }
      });
      this.connect();
      this.loadHistory(version);
      this.loadPresence();
    }

    /// The viewer's own reminders (nobody else's are ever sent), shown as a bell on their cards.
    async loadReminders() {
      try {
        const response = await authorized("/api/v1/groups/" + encodeURIComponent(this.groupID) + "/reminders");
        if (!response.ok) return;
        const { reminders } = await response.json();
        this.reminders = new Map(reminders.map((reminder) => [reminder.todo_id, reminder]));
        this.decorateReminders();
      } catch { /* the next reconnect reads them again */ }
    }

    /// A reminder set elsewhere (another tab) is listed once the scheduler has read it.
    reloadRemindersSoon() {
      clearTimeout(this.reminderReload);
      this.reminderReload = setTimeout(() => this.loadReminders(), 1500);
    }

    decorateReminders() {
      for (const card of $$(".card[data-todo-id]", this.root)) {
        const reminder = this.reminders.get(card.dataset.todoId);
        let badge = $(".reminder", card);
        if (!reminder) { badge?.remove(); continue; }
        if (!badge) {
          badge = document.createElement("span");
          badge.className = "reminder";
          let meta = $(".card-meta", card);
          if (!meta) { meta = document.createElement("footer"); meta.className = "card-meta"; card.append(meta); }
          meta.prepend(badge);
        }
        const text = reminderText(reminder);
        if (badge.dataset.text !== text) {
          badge.dataset.text = text;
          badge.innerHTML = reminderIcon;
          badge.append(document.createTextNode(text));
          badge.title = "Your reminder: " + text;
        }
      }
    }

    setReminder(card, local) {
      const todoID = card.dataset.todoId;
      const previous = this.reminders.get(todoID);
      profileTimeZone().then((timezone) => {
        this.reminders.set(todoID, { todo_id: todoID, remind_at: local.length === 16 ? local + ":00" : local, timezone });
        this.decorateReminders();
      });
      this.send({ action: "set-reminder", todo_id: todoID, remind_at: local }, () => {
        if (previous) this.reminders.set(todoID, previous); else this.reminders.delete(todoID);
        this.decorateReminders();
      }, "reminder");
    }

    clearReminder(card) {
      const todoID = card.dataset.todoId;
      const previous = this.reminders.get(todoID);
      this.reminders.delete(todoID);
      this.decorateReminders();
      this.send({ action: "clear-reminder", todo_id: todoID }, () => {
        if (previous) this.reminders.set(todoID, previous);
        this.decorateReminders();
      }, "reminder");
    }

    async loadPresence() {
      try {
        const response = await authorized("/api/v1/groups/" + encodeURIComponent(this.groupID) + "/presence");
        if (!response.ok) return;
        this.online = (await response.json()).online;
        this.showPresence();
      } catch { /* the stream's next signal brings it */ }
    }

    /// A dot on each member viewing the board now, and how many they are.
    showPresence() {
      const names = new Set(this.online);
      for (const item of $$("#members-panel li[data-username]", this.root)) {
        const here = names.has(item.dataset.username);
        item.classList.toggle("online", here);
        const status = $(".presence", item);
        if (status) status.textContent = here ? "online" : "";
      }
      const count = $("#online-count", this.root);
      if (count) count.textContent = names.size ? names.size + " online" : "";
    }

    /// The feed starts with the group's latest events (from the projection's history).
    async loadHistory(version) {
      try {
        const after = Math.max(0, version - 20);
        const response = await authorized("/api/v1/groups/" + encodeURIComponent(this.groupID) + "/events?after=" + after + "&limit=20");
        if (!response.ok) return;
        const { events } = await response.json();
        const list = $("#feed-items", this.root);
        const live = list ? Array.from(list.children) : [];
        for (const event of events) if (event.group_version <= version) this.feed(event);
        if (list) list.prepend(...live); // anything that arrived live meanwhile stays on top
      } catch { /* the feed is optional */ }
    }

    // ---- live stream
    async connect() {
      let delay = 1000;
      while (!this.ended) {
        this.setLive("connecting");
        try {
          const token = await accessToken();
          const response = await fetch("/events?group_id=" + encodeURIComponent(this.groupID), {
            headers: { Authorization: "Bearer " + token, Accept: "text/event-stream", "Last-Event-ID": String(this.lastID) },
          });
          if (response.status === 401) { await refresh(true); continue; }
          if (response.status === 403 || response.status === 404) { this.leave("You are no longer a member of this group."); return; }
          if (!response.ok) throw new Error("stream answered " + response.status);
          this.setLive("live");
          this.loadPresence(); // the stream's signals follow from here
          this.loadReminders();
          delay = 1000;
          await readEvents(response, (event) => this.onEvent(event));
        } catch (error) {
          if (this.ended) return;
        }
        if (this.ended) return;
        this.setLive("offline");
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 15000);
      }
    }

    setLive(state) {
      const live = $(".live", this.root);
      if (!live) return;
      live.dataset.liveState = state;
      live.textContent = state === "live" ? "live" : state === "connecting" ? "connecting…" : "reconnecting…";
    }

    onEvent(event) {
      if (event.id && /^\d+$/.test(event.id)) this.lastID = Math.max(this.lastID, Number(event.id));
      if (event.type === "datastar-patch-elements") { Datastar.patchElements(event.data); this.tidy(); }
      else if (event.type === "datastar-patch-signals") Datastar.patchSignals(event.data);
      else if (event.type === "todo-event") {
        let domain;
        try { domain = JSON.parse(event.data.join("\n")); } catch { return; }
        this.onDomainEvent(domain);
      }
    }

    onDomainEvent(domain) {
      const mine = this.pending.get(domain.command_id);
      if (mine) this.settle(domain.command_id, domain);
      else if (domain.actor_user_id === this.me.id) this.remember(domain);
      this.feed(domain);
      const type = domain.event_type || "";
      if (type.startsWith("member.")) {
        if (type === "member.removed" && domain.member_user_id === this.me.id) { this.leave("You were removed from this group."); return; }
        if (type === "member.role_changed" && domain.member_user_id === this.me.id) { location.reload(); return; }
        this.reloadMembers();
      }
      if (type === "group.deleted") this.leave("This group was deleted.");
      if (type.startsWith("todo.")) this.calendar.changed();
      // The viewer's reminders: gone when fired, cleared, or cancelled by deletion or done.
      const ownReminder = type.startsWith("reminder.") && domain.actor_user_id === this.me.id;
      if ((ownReminder && type !== "reminder.set") || type === "todo.deleted" || (type.startsWith("todo.") && domain.status === "done")) {
        if (this.reminders.delete(domain.todo_id)) this.decorateReminders();
      } else if (ownReminder && !mine) this.reloadRemindersSoon();
    }

    leave(message) {
      this.ended = true;
      sessionStorage.setItem("teamboard.notice", message);
      location.replace("/app");
    }

    async reloadMembers() {
      try {
        $("#members-panel", this.root).innerHTML = await fragment("/ui/members?group_id=" + encodeURIComponent(this.groupID));
        this.wireMembers();
        this.showPresence();
      } catch { /* the next event or a reload will bring it */ }
    }

    // ---- commands, optimistic updates and their outcomes
    /// `undo`, for a change of one's own: `{ what, inverse(version) }`, offered once the change is
    /// applied (the inverse carries the todo's version then as `expected_version`).
    async send(body, rollback, label, undo = null) {
      try {
        const answer = await api("POST", "/api/v1/command", { group_id: this.groupID, ...body },
                                 body.action === "create-todo" ? { "Idempotency-Key": body.todo_id } : {});
        const entry = { rollback, label, undo };
        const early = this.outcomes.get(answer.command_id);
        if (early) { this.outcomes.delete(answer.command_id); this.settleEntry(entry, early); }
        else this.pending.set(answer.command_id, entry);
      } catch (error) {
        this.reject(rollback, error.message);
      }
    }

    /// Undo, for 10 s after a change of one's own is applied: the toast's button or Ctrl/Cmd+Z.
    offerUndo(undo, version) {
      if (this.dismissUndo) this.dismissUndo();
      const until = Date.now() + 10_000;
      const perform = () => {
        this.undoable = null;
        if (this.dismissUndo) this.dismissUndo();
        this.send({ ...undo.inverse(version), expected_version: version }, null, "undo");
      };
      this.undoable = { perform, until };
      this.dismissUndo = toastWithAction(undo.what, "Undo", perform, 10_000);
    }

    undoLast() {
      if (this.undoable && Date.now() < this.undoable.until) { this.undoable.perform(); return true; }
      return false;
    }

    remember(domain) {
      this.outcomes.set(domain.command_id, domain);
      if (this.outcomes.size > 200) this.outcomes.delete(this.outcomes.keys().next().value);
    }

    settle(commandID, domain) {
      const entry = this.pending.get(commandID);
      this.pending.delete(commandID);
      this.settleEntry(entry, domain);
    }

    settleEntry(entry, domain) {
      if (domain.event_type === "command.rejected") {
        if (entry.label === "undo") {
          toast("Not undone: " + (domain.code === "version_conflict" ? "someone changed this todo since." : (domain.reason || "refused.")), "error");
          return;
        }
        this.reject(entry.rollback, domain.reason);
      } else if (entry.undo && domain.version) {
        this.offerUndo(entry.undo, domain.version);
      }
    }

    reject(rollback, reason) {
      if (rollback) rollback();
      this.tidy();
      toast("Not done: " + (reason || "the change was rejected."), "error");
    }

    // ---- board helpers
    column(status) { return $("#cards-" + status, this.root); }

    tidy() {
      for (const column of $$(".cards", this.root)) {
        const cards = $$(".card", column);
        const sorted = [...cards].sort((a, b) => Number(a.dataset.position) - Number(b.dataset.position) || a.id.localeCompare(b.id));
        if (sorted.some((card, index) => card !== cards[index])) column.append(...sorted);
      }
      this.recount();
      this.decorateReminders();
    }

    recount() {
      for (const counter of $$("[data-count-for]", this.root)) {
        counter.textContent = String($$(".card", this.column(counter.dataset.countFor)).length);
      }
    }

    canWrite(card) { return this.mayWrite(card.dataset.createdBy); }

    /// Whether the viewer may edit, delete or restore a todo created by `createdBy`.
    mayWrite(createdBy) {
      return this.me.role !== "member" || createdBy === this.me.id;
    }

    canMove(card) {
      if (this.canWrite(card)) return true;
      const assignee = $(".assignee", card);
      return !!assignee && assignee.textContent === this.me.name;
    }

    /// The position for a card dropped at `index` among `cards` (fractional, between neighbours).
    static positionAt(cards, index) {
      const before = cards[index - 1] ? Number(cards[index - 1].dataset.position) : null;
      const after = cards[index] ? Number(cards[index].dataset.position) : null;
      if (before === null && after === null) return 1000;
      if (before === null) return after - 1000;
      if (after === null) return before + 1000;
      return (before + after) / 2;
    }

    move(card, status, index, undoable = true) {
      const origin = { parent: card.parentElement, next: card.nextElementSibling, status: card.dataset.status, position: card.dataset.position };
      const target = this.column(status);
      const others = $$(".card", target).filter((other) => other !== card);
      const position = Board.positionAt(others, index);
      if (card.parentElement === target && $$(".card", target).indexOf(card) === index) return; // dropped where it was
      target.insertBefore(card, others[index] || null);
      card.dataset.status = status;
      card.dataset.position = String(position);
      card.classList.add("pending");
      this.recount();
      const todoID = card.dataset.todoId, title = $(".card-title", card)?.textContent || "the todo";
      this.send({ action: "move-todo", todo_id: todoID, status, position }, () => {
        card.classList.remove("pending");
        card.dataset.status = origin.status;
        card.dataset.position = origin.position;
        origin.parent.insertBefore(card, origin.next && origin.next.parentElement === origin.parent ? origin.next : null);
      }, "move", !undoable ? null : {
        what: "Moved “" + title + "”.",
        inverse: () => ({ action: "move-todo", todo_id: todoID, status: origin.status, position: Number(origin.position) }),
      });
    }

    // ---- wiring: buttons, dialog, drag and drop, keyboard
    wire() {
      $$('[data-action="new-todo"]', this.root).forEach((button) =>
        button.addEventListener("click", () => this.openDialog(null, button.dataset.status)));
      const feedToggle = $('[data-action="toggle-feed"]', this.root);
      const showFeed = (on) => {
        $("#feed", this.root).hidden = !on;
        feedToggle.setAttribute("aria-pressed", String(on));
        localStorage.setItem("teamboard.feed", on ? "on" : "off");
      };
      feedToggle.addEventListener("click", () => showFeed($("#feed", this.root).hidden));
      $('[data-action="open-trash"]', this.root).addEventListener("click", () => this.openTrash());
      this.calendar = new CalendarView(this);
      const showView = (view) => {
        for (const button of $$("[data-view]", this.root)) button.setAttribute("aria-pressed", String(button.dataset.view === view));
        $(".board", this.root).hidden = view !== "board";
        this.calendar.show(view === "calendar");
        localStorage.setItem("teamboard.view", view);
      };
      for (const button of $$("[data-view]", this.root)) button.addEventListener("click", () => showView(button.dataset.view));
      showView(localStorage.getItem("teamboard.view") === "calendar" ? "calendar" : "board");
      showFeed(localStorage.getItem("teamboard.feed") === "on");
      this.wireMembers();
      this.wireDrag();
      this.root.addEventListener("keydown", (event) => {
        const card = event.target.closest?.(".card");
        if (!card) return;
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); this.openDialog(card); }
        const order = ["todo", "in_progress", "done"];
        const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
        if (step && event.altKey) {
          event.preventDefault();
          const status = order[order.indexOf(card.dataset.status) + step];
          if (!status) return;
          if (!this.canMove(card)) { toast("Only the creator, the assignee, an admin or an owner can move this todo.", "error"); return; }
          this.move(card, status, $$(".card", this.column(status)).length);
          card.focus();
        }
      });
    }

    wireMembers() {
      const form = $('form[data-action="add-member"]', this.root);
      form?.addEventListener("submit", async (event) => {
        event.preventDefault();
        const username = form.username.value.trim().toLowerCase();
        if (!username) return;
        try {
          await api("POST", "/api/v1/groups/" + encodeURIComponent(this.groupID) + "/members", { username, role: "member" });
          form.reset();
          toast(username + " was added to the group.");
        } catch (error) { toast(error.message, "error"); }
      });
    }

    wireDrag() {
      let drag = null;
      this.root.addEventListener("pointerdown", (event) => {
        const card = event.target.closest(".card");
        if (!card || event.button !== 0 || card.classList.contains("pending")) return;
        drag = { card, x: event.clientX, y: event.clientY, active: false, pointer: event.pointerId };
      });
      window.addEventListener("pointermove", (event) => {
        if (!drag || event.pointerId !== drag.pointer) return;
        const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
        if (!drag.active && Math.hypot(dx, dy) < 6) return;
        if (!drag.active) {
          if (!this.canMove(drag.card)) { toast("Only the creator, the assignee, an admin or an owner can move this todo.", "error"); drag = null; return; }
          drag.active = true;
          drag.card.classList.add("dragging");
        }
        drag.card.style.transform = `translate(${dx}px, ${dy}px) rotate(1.5deg)`;
        const column = document.elementFromPoint(event.clientX, event.clientY)?.closest(".column");
        $$(".column", this.root).forEach((each) => each.classList.toggle("drop-target", each === column));
      });
      window.addEventListener("pointerup", (event) => {
        if (!drag || event.pointerId !== drag.pointer) return;
        const { card, active } = drag;
        drag = null;
        $$(".column", this.root).forEach((each) => each.classList.remove("drop-target"));
        if (!active) { this.openDialog(card); return; }
        card.classList.remove("dragging");
        card.style.transform = "";
        const column = document.elementFromPoint(event.clientX, event.clientY)?.closest(".column");
        if (!column || !this.root.contains(column)) return;
        const cards = $$(".card", column).filter((other) => other !== card);
        let index = cards.findIndex((other) => {
          const box = other.getBoundingClientRect();
          return event.clientY < box.top + box.height / 2;
        });
        if (index < 0) index = cards.length;
        this.move(card, column.dataset.status, index);
      });
      window.addEventListener("pointercancel", () => {
        if (drag) { drag.card.classList.remove("dragging"); drag.card.style.transform = ""; drag = null; }
      });
    }

    // ---- the create / edit dialog
    openDialog(card, status = "todo") {
      const dialog = todoDialog();
      const form = $("form", dialog);
      form.reset();
      const editing = !!card;
      const mayWrite = !card || this.canWrite(card);
      const mayMove = !card || this.canMove(card);
      $("h2", dialog).textContent = editing ? "Edit todo" : "New todo";
      const value = (selector) => card ? ($(selector, card)?.textContent || "") : "";
      form.title.value = value(".card-title");
      form.notes.value = value(".card-notes");
      form.labels.value = card ? $$(".label", card).map((label) => label.textContent).join(", ") : "";
      form.due_date.value = card ? ($(".due", card)?.getAttribute("datetime") || "") : "";
      form.status.value = card ? card.dataset.status : status;
      const assignees = $$("#members-panel li[data-username]", this.root).map((item) => item.dataset.username);
      const current = value(".assignee");
      form.assignee.replaceChildren(new Option("Nobody", ""), ...assignees.map((name) => new Option(name, name)));
      form.assignee.value = current;
      for (const field of ["title", "notes", "labels", "due_date", "assignee"]) form[field].disabled = !mayWrite;
      form.status.disabled = !mayMove;
      const remove = $('[data-action="delete-todo"]', dialog);
      remove.hidden = !editing;
      remove.disabled = !mayWrite;
      const note = $(".permission-note", dialog);
      note.hidden = mayWrite;
      note.textContent = mayMove
        ? "You can move this todo (it is assigned to you), but only its creator, an admin or an owner can edit or delete it."
        : "Only this todo's creator, an admin or an owner can edit, move or delete it.";
      $('[type="submit"]', dialog).disabled = !mayWrite && !mayMove;

      form.onsubmit = (event) => {
        event.preventDefault();
        const labels = form.labels.value.split(",").map((label) => label.trim()).filter(Boolean);
        if (!form.title.value.trim()) { form.title.focus(); return; }
        dialog.close();
        if (!editing) this.create(form, labels);
        else this.edit(card, form, labels, mayWrite);
      };
      remove.onclick = () => { dialog.close(); this.remove(card); };
      // Reminders are the viewer's own, on a saved todo that is not done; set and cleared at once.
      const reminderBox = $("[data-reminder]", dialog);
      reminderBox.hidden = !editing || card.dataset.status === "done";
      if (!reminderBox.hidden) {
        const current = this.reminders.get(card.dataset.todoId);
        form.remind_at.value = current ? current.remind_at.slice(0, 16) : "";
        const clear = $('[data-action="clear-reminder"]', dialog);
        clear.hidden = !current;
        const zoneNote = $("#todo-remind-zone", dialog);
        zoneNote.textContent = current ? "Set for " + reminderText(current) + "." : "";
        profileTimeZone().then((zone) => { if (!current) zoneNote.textContent = "In your time zone, " + zone + " (Settings)."; });
        $('[data-action="set-reminder"]', dialog).onclick = () => {
          if (!form.remind_at.value) { form.remind_at.focus(); return; }
          this.setReminder(card, form.remind_at.value);
          dialog.close();
          toast("Reminder set.");
        };
        clear.onclick = () => { this.clearReminder(card); dialog.close(); toast("Reminder cleared."); };
      }
      $('[data-action="cancel"]', dialog).onclick = () => dialog.close();
      dialog.showModal();
      (mayWrite ? form.title : form.status).focus();
    }

    create(form, labels) {
      const todoID = newID();
      const status = form.status.value;
      const column = this.column(status);
      const position = Board.positionAt($$(".card", column), $$(".card", column).length);
      const card = document.createElement("article");
      card.id = "todo-" + todoID;
      card.className = "card pending";
      card.tabIndex = 0;
      Object.assign(card.dataset, { todoId: todoID, status, position: String(position), version: "0", createdBy: this.me.id });
      const title = document.createElement("h3");
      title.className = "card-title";
      title.textContent = form.title.value.trim();
      card.append(title);
      column.append(card);
      this.recount();
      const body = { action: "create-todo", todo_id: todoID, title: form.title.value.trim(), status, position };
      if (form.notes.value) body.notes = form.notes.value;
      if (labels.length) body.labels = labels;
      if (form.due_date.value) body.due_date = form.due_date.value;
      if (form.assignee.value) body.assignee = form.assignee.value;
      this.send(body, () => card.remove(), "create", {
        what: "Created “" + body.title + "”.",
        inverse: () => ({ action: "delete-todo", todo_id: todoID }),
      });
    }

    edit(card, form, labels, mayWrite) {
      const changes = {};
      if (mayWrite) {
        if (form.title.value.trim() !== ($(".card-title", card)?.textContent || "")) changes.title = form.title.value.trim();
        if (form.notes.value !== ($(".card-notes", card)?.textContent || "")) changes.notes = form.notes.value;
        const before = $$(".label", card).map((label) => label.textContent);
        if (labels.join("\u0000") !== before.join("\u0000")) changes.labels = labels;
        if (form.due_date.value !== ($(".due", card)?.getAttribute("datetime") || "")) changes.due_date = form.due_date.value;
        if (form.assignee.value !== ($(".assignee", card)?.textContent || "")) changes.assignee = form.assignee.value;
      }
      if (Object.keys(changes).length) {
        // What the fields were, for Undo.
        const was = {};
        if ("title" in changes) was.title = $(".card-title", card)?.textContent || "";
        if ("notes" in changes) was.notes = $(".card-notes", card)?.textContent || "";
        if ("labels" in changes) was.labels = $$(".label", card).map((label) => label.textContent);
        if ("due_date" in changes) was.due_date = $(".due", card)?.getAttribute("datetime") || "";
        if ("assignee" in changes) was.assignee = $(".assignee", card)?.textContent || "";
        const todoID = card.dataset.todoId;
        const previous = card.cloneNode(true);
        const title = $(".card-title", card);
        if (changes.title && title) title.textContent = changes.title;
        card.classList.add("pending");
        this.send({ action: "update-todo", todo_id: todoID, ...changes }, () => {
          const now = document.getElementById(card.id);
          (now || card).replaceWith(previous);
        }, "update", form.status.value !== card.dataset.status ? null : {
          // (An edit that also moves the todo is two commands: neither is offered for Undo.)
          what: "Edited “" + (was.title || changes.title || $(".card-title", card)?.textContent || "the todo") + "”.",
          inverse: () => ({ action: "update-todo", todo_id: todoID, ...was }),
        });
      }
      if (form.status.value !== card.dataset.status) {
        this.move(card, form.status.value, $$(".card", this.column(form.status.value)).length, !Object.keys(changes).length);
      }
    }

    remove(card) {
      if (!this.canWrite(card)) { toast("Only this todo's creator, an admin or an owner can delete it.", "error"); return; }
      const parent = card.parentElement, next = card.nextElementSibling;
      card.hidden = true;
      this.recount();
      const todoID = card.dataset.todoId;
      const title = $(".card-title", card)?.textContent || "the todo";
      this.send({ action: "delete-todo", todo_id: todoID }, () => {
        card.hidden = false;
        if (!card.isConnected) parent.insertBefore(card, next);
      }, "delete", {
        what: "Deleted “" + title + "”.",
        inverse: () => ({ action: "restore-todo", todo_id: todoID }),
      });
    }

    /// The group's trash: todos deleted in the last 30 days, the latest first, each restorable by
    /// those who may delete it.
    async openTrash() {
      const dialog = trashDialog();
      const list = $(".trash-items", dialog);
      const more = $('[data-action="trash-more"]', dialog);
      list.replaceChildren();
      let cursor = null;
      const load = async () => {
        more.disabled = true;
        try {
          const query = "group_id=" + encodeURIComponent(this.groupID) + "&deleted=true&limit=50" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
          const response = await authorized("/api/v1/todos?" + query);
          if (!response.ok) throw new Error(await errorMessage(response));
          const page = await response.json();
          for (const todo of page.todos) list.append(this.trashItem(todo));
          cursor = page.next_cursor || null;
        } catch (error) { toast(error.message, "error"); }
        more.hidden = !cursor;
        more.disabled = false;
        $(".trash-empty", dialog).hidden = list.children.length > 0;
      };
      more.onclick = load;
      $('[data-action="close"]', dialog).onclick = () => dialog.close();
      dialog.showModal();
      await load();
    }

    trashItem(todo) {
      const item = document.createElement("li");
      item.className = "trash-item";
      item.dataset.todoId = todo.todo_id;
      const text = document.createElement("div");
      const title = document.createElement("strong");
      title.textContent = todo.title;
      const meta = document.createElement("p");
      meta.className = "muted";
      const days = Math.max(0, Math.ceil((new Date(todo.restorable_until) - Date.now()) / 86_400_000));
      meta.textContent = "Deleted by " + (todo.deleted_by_name || "someone") + " on " + new Date(todo.deleted_at).toLocaleString()
        + " · " + days + (days === 1 ? " day" : " days") + " left";
      text.append(title, meta);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button small";
      button.dataset.action = "restore-todo";
      button.textContent = "Restore";
      const mayRestore = this.mayWrite(todo.created_by);
      button.disabled = !mayRestore;
      if (!mayRestore) button.title = "Only its creator, an admin or an owner can restore it.";
      button.addEventListener("click", () => {
        item.hidden = true;
        this.send({ action: "restore-todo", todo_id: todo.todo_id, expected_version: todo.version }, () => { item.hidden = false; }, "restore");
      });
      item.append(text, button);
      return item;
    }

    feed(domain) {
      const list = $("#feed-items", this.root);
      if (!list) return;
      const verbs = {
        "todo.created": "created", "todo.updated": "edited", "todo.moved": "moved", "todo.deleted": "deleted", "todo.restored": "restored",
        "reminder.set": "set a reminder on", "reminder.cleared": "cleared a reminder on", "reminder.fired": "was reminded of",
        "member.added": "added", "member.removed": "removed", "member.role_changed": "changed the role of",
        "command.rejected": "was refused:", "group.deleted": "deleted the group",
      };
      const item = document.createElement("li");
      const who = domain.actor_name || "someone";
      const what = domain.title ? "“" + domain.title + "”" : domain.member_username || "";
      const where = domain.event_type === "todo.moved" && domain.status ? " to " + domain.status.replace("_", " ") : "";
      const reason = domain.event_type === "command.rejected" ? " " + (domain.reason || "") : "";
      item.textContent = who + " " + (verbs[domain.event_type] || domain.event_type) + " " + what + where + reason;
      const time = document.createElement("time");
      time.textContent = new Date(domain.occurred_at || Date.now()).toLocaleTimeString();
      item.prepend(time);
      list.prepend(item);
      while (list.children.length > 50) list.lastElementChild.remove();
    }
  }

  // ---------------------------------------------------------------- calendar
  /// `YYYY-MM-DD` of a local date, and back (at local noon, so no DST shift moves the day).
  const isoDay = (date) => date.getFullYear() + "-" + String(date.getMonth() + 1).padStart(2, "0") + "-" + String(date.getDate()).padStart(2, "0");
  const fromIsoDay = (text) => { const [y, m, d] = text.split("-").map(Number); return new Date(y, m - 1, d, 12); };
  const addDays = (date, days) => new Date(date.getFullYear(), date.getMonth(), date.getDate() + days, 12);

  /// The group's month grid by due date (DESIGN §9): today marked, undated todos beside it; drag a
  /// todo to another day (or Alt+arrows on a focused one) to change its due date through the
  /// normal write path, optimistic with rollback. Reloaded from the read API when a todo event
  /// arrives, so other members' changes show live.
  class CalendarView {
    constructor(board) {
      this.board = board;
      this.root = $("#calendar", board.root);
      const today = new Date();
      this.month = new Date(today.getFullYear(), today.getMonth(), 1, 12);
      this.visible = false;
      this.timer = null;
      this.loading = 0;
      this.wireDrag();
    }

    /// Pointer dragging, as on the board (mouse, pen and touch alike): an item follows the pointer,
    /// the day under it is marked, and dropping it there reschedules it; a click opens the todo.
    wireDrag() {
      let drag = null;
      const dayAt = (event) => document.elementFromPoint(event.clientX, event.clientY)?.closest(".day");
      this.root.addEventListener("pointerdown", (event) => {
        const item = event.target.closest(".cal-item");
        if (!item || event.button !== 0 || item.classList.contains("pending")) return;
        drag = { item, x: event.clientX, y: event.clientY, active: false, pointer: event.pointerId };
      });
      window.addEventListener("pointermove", (event) => {
        if (!drag || event.pointerId !== drag.pointer) return;
        const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
        if (!drag.active && Math.hypot(dx, dy) < 6) return;
        if (!drag.active) {
          if (!this.board.mayWrite(drag.item.dataset.createdBy)) {
            toast("Only this todo's creator, an admin or an owner can change its due date.", "error");
            drag = null;
            return;
          }
          drag.active = true;
          this.dragging = true;
          drag.item.classList.add("dragging");
        }
        drag.item.style.transform = `translate(${dx}px, ${dy}px)`;
        const day = dayAt(event);
        $$(".day", this.root).forEach((each) => each.classList.toggle("drop-target", each === day));
      });
      window.addEventListener("pointerup", (event) => {
        if (!drag || event.pointerId !== drag.pointer) return;
        const { item, active } = drag;
        drag = null;
        this.dragging = false;
        $$(".day", this.root).forEach((each) => each.classList.remove("drop-target"));
        if (!active) { this.open(item); return; }
        item.classList.remove("dragging");
        item.style.transform = "";
        const day = dayAt(event);
        if (day && this.root.contains(day)) this.reschedule(item, day.dataset.date);
      });
      window.addEventListener("pointercancel", () => {
        if (drag) { drag.item.classList.remove("dragging"); drag.item.style.transform = ""; drag = null; }
        this.dragging = false;
      });
    }

    open(item) {
      const card = document.getElementById("todo-" + item.dataset.todoId);
      if (card) this.board.openDialog(card);
    }

    /// 0 = Sunday … 6 = Saturday: the setting, else the locale's, else Monday.
    weekStart() {
      const setting = localStorage.getItem("teamboard.weekStart");
      if (setting === "0" || setting === "1" || setting === "6") return Number(setting);
      try {
        const locale = new Intl.Locale(navigator.language);
        const info = locale.getWeekInfo ? locale.getWeekInfo() : locale.weekInfo;
        if (info && info.firstDay) return info.firstDay % 7;
      } catch { /* an engine without week info */ }
      return 1;
    }

    show(on) {
      this.visible = on;
      this.root.hidden = !on;
      if (on) this.render();
    }

    /// At most one reload per 150 ms however busy the group is, and none while a todo is being
    /// dragged (it follows the drop).
    changed() {
      if (!this.visible || this.timer) return;
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.dragging) { this.changed(); return; }
        this.render();
      }, 150);
    }

    async fetchRange(from, to) {
      const todos = [];
      let cursor = null;
      do {
        // min_version: the projection catches up with what the stream already showed.
        const query = "group_id=" + encodeURIComponent(this.board.groupID) + "&due_from=" + from + "&due_to=" + to + "&limit=200"
          + "&min_version=" + this.board.lastID + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
        const response = await authorized("/api/v1/todos?" + query);
        if (!response.ok) throw new Error(await errorMessage(response));
        const page = await response.json();
        todos.push(...page.todos);
        cursor = page.next_cursor;
      } while (cursor);
      return todos;
    }

    async render() {
      const load = ++this.loading;
      const start = this.month;
      const first = addDays(start, -((start.getDay() - this.weekStart() + 7) % 7));
      const days = Array.from({ length: 42 }, (_, index) => addDays(first, index));
      let todos;
      try { todos = await this.fetchRange(isoDay(days[0]), isoDay(days[41])); } catch (error) { toast(error.message, "error"); return; }
      if (load !== this.loading) return; // a newer render is on its way
      const byDay = new Map();
      for (const todo of todos) {
        if (!byDay.has(todo.due_date)) byDay.set(todo.due_date, []);
        byDay.get(todo.due_date).push(todo);
      }
      const head = document.createElement("div");
      head.className = "calendar-head";
      const title = document.createElement("h2");
      title.textContent = start.toLocaleDateString(undefined, { month: "long", year: "numeric" });
      const button = (label, action, text) => {
        const element = document.createElement("button");
        element.type = "button";
        element.className = "button ghost small";
        element.dataset.action = action;
        element.setAttribute("aria-label", label);
        element.textContent = text;
        return element;
      };
      const previous = button("Previous month", "previous-month", "‹");
      const next = button("Next month", "next-month", "›");
      const today = button("This month", "this-month", "Today");
      previous.onclick = () => { this.month = new Date(start.getFullYear(), start.getMonth() - 1, 1, 12); this.render(); };
      next.onclick = () => { this.month = new Date(start.getFullYear(), start.getMonth() + 1, 1, 12); this.render(); };
      today.onclick = () => { const now = new Date(); this.month = new Date(now.getFullYear(), now.getMonth(), 1, 12); this.render(); };
      const weekStart = document.createElement("select");
      weekStart.setAttribute("aria-label", "Week starts on");
      weekStart.append(new Option("Week: as my locale", ""), new Option("Week starts Monday", "1"),
                       new Option("Week starts Sunday", "0"), new Option("Week starts Saturday", "6"));
      weekStart.value = localStorage.getItem("teamboard.weekStart") || "";
      weekStart.onchange = () => {
        if (weekStart.value) localStorage.setItem("teamboard.weekStart", weekStart.value);
        else localStorage.removeItem("teamboard.weekStart");
        this.render();
      };
      head.append(previous, title, next, today, weekStart);

      const grid = document.createElement("div");
      grid.className = "month";
      grid.setAttribute("role", "grid");
      for (let index = 0; index < 7; index++) {
        const name = document.createElement("div");
        name.className = "weekday";
        name.textContent = days[index].toLocaleDateString(undefined, { weekday: "short" });
        grid.append(name);
      }
      const todayText = isoDay(new Date());
      for (const day of days) {
        const text = isoDay(day);
        const cell = document.createElement("div");
        cell.className = "day" + (day.getMonth() !== start.getMonth() ? " other-month" : "") + (text === todayText ? " today" : "");
        cell.dataset.date = text;
        cell.setAttribute("role", "gridcell");
        const number = document.createElement("span");
        number.className = "day-number";
        number.textContent = String(day.getDate());
        if (text === todayText) number.setAttribute("aria-current", "date");
        cell.append(number);
        for (const todo of byDay.get(text) || []) cell.append(this.item(todo.todo_id, todo.title, todo.status, todo.created_by, todo.version, text));
        grid.append(cell);
      }

      // Undated todos: the board's cards without a due date (the board is live already).
      const undated = document.createElement("aside");
      undated.className = "undated";
      undated.setAttribute("aria-label", "Todos without a due date");
      const heading = document.createElement("h3");
      heading.textContent = "No due date";
      undated.append(heading);
      for (const card of $$(".card:not(.pending)", this.board.root)) {
        if ($(".due", card) || card.hidden) continue;
        undated.append(this.item(card.dataset.todoId, $(".card-title", card)?.textContent || "", card.dataset.status,
                                 card.dataset.createdBy, card.dataset.version, ""));
      }
      const focused = this.refocus || (this.root.contains(document.activeElement) ? document.activeElement.dataset?.todoId : null);
      this.refocus = null;
      this.root.replaceChildren(head, grid, undated);
      if (focused) $$(".cal-item", this.root).find((item) => item.dataset.todoId === focused)?.focus();
    }

    item(todoID, title, status, createdBy, version, day) {
      const item = document.createElement("div");
      item.className = "cal-item" + (status === "done" ? " done" : "");
      item.textContent = title;
      item.title = title;
      item.tabIndex = 0;
      Object.assign(item.dataset, { todoId: todoID, createdBy: createdBy || "", version: String(version), day });
      item.setAttribute("aria-label", title + (day ? ", due " + fromIsoDay(day).toLocaleDateString() : ", no due date")
        + ". Alt+arrow keys move it by a day or a week.");
      item.addEventListener("keydown", (event) => {
        if (event.key === "Enter") { this.open(item); return; }
        const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -7, ArrowDown: 7 }[event.key];
        if (!step || !event.altKey) return;
        event.preventDefault();
        if (item.classList.contains("pending")) return;
        const from = item.dataset.day ? fromIsoDay(item.dataset.day) : new Date();
        this.reschedule(item, isoDay(addDays(from, item.dataset.day ? step : 0)));
      });
      return item;
    }

    /// Moves the todo to `day` at once, then sends `update-todo {due_date}`; a refusal puts it back.
    reschedule(item, day) {
      if (!this.board.mayWrite(item.dataset.createdBy)) {
        toast("Only this todo's creator, an admin or an owner can change its due date.", "error");
        return;
      }
      if (item.dataset.day === day) return;
      const origin = { parent: item.parentElement, next: item.nextElementSibling, day: item.dataset.day };
      const target = $(`.day[data-date="${day}"]`, this.root);
      item.dataset.day = day;
      item.classList.add("pending");
      if (target) {
        target.append(item);
        item.focus();
      } else {
        // Off this grid: show the month it went to, and keep the focus on it there.
        const moved = fromIsoDay(day);
        this.month = new Date(moved.getFullYear(), moved.getMonth(), 1, 12);
        this.refocus = item.dataset.todoId;
      }
      this.board.send({ action: "update-todo", todo_id: item.dataset.todoId, due_date: day }, () => {
        item.classList.remove("pending");
        item.dataset.day = origin.day;
        if (origin.parent.isConnected) {
          origin.parent.insertBefore(item, origin.next && origin.next.parentElement === origin.parent ? origin.next : null);
        }
        this.changed();
      }, "reschedule");
    }
  }

  function trashDialog() {
    let dialog = $("#trash-dialog");
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "trash-dialog";
    dialog.setAttribute("aria-labelledby", "trash-dialog-title");
    dialog.innerHTML = `
      <div class="dialog-form">
        <h2 id="trash-dialog-title">Trash</h2>
        <p class="muted">Deleted todos stay here for 30 days.</p>
        <p class="trash-empty muted" hidden>The trash is empty.</p>
        <ol class="trash-items"></ol>
        <div class="dialog-actions">
          <button type="button" class="button ghost" data-action="trash-more" hidden>Show more</button>
          <button type="button" class="button primary" data-action="close">Close</button>
        </div>
      </div>`;
    document.body.append(dialog);
    return dialog;
  }

  function todoDialog() {
    let dialog = $("#todo-dialog");
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "todo-dialog";
    dialog.setAttribute("aria-labelledby", "todo-dialog-title");
    dialog.innerHTML = `
      <form class="dialog-form" method="dialog" novalidate>
        <h2 id="todo-dialog-title">Todo</h2>
        <p class="permission-note" role="note" hidden></p>
        <label for="todo-title">Title</label>
        <input id="todo-title" name="title" required maxlength="200">
        <label for="todo-notes">Notes</label>
        <textarea id="todo-notes" name="notes" rows="2" maxlength="5000"></textarea>
        <label for="todo-labels">Labels <span class="muted">(comma separated)</span></label>
        <input id="todo-labels" name="labels" placeholder="research, ui design">
        <div class="dialog-row">
          <div><label for="todo-due">Due date</label><input id="todo-due" name="due_date" type="date"></div>
          <div><label for="todo-assignee">Assignee</label><select id="todo-assignee" name="assignee"></select></div>
        </div>
        <label for="todo-status">Column</label>
        <select id="todo-status" name="status">
          <option value="todo">To do</option><option value="in_progress">In progress</option><option value="done">Done</option>
        </select>
        <fieldset class="dialog-reminder" data-reminder>
          <legend>Your reminder <span class="muted">(only you see it)</span></legend>
          <div class="reminder-row">
            <input id="todo-remind-at" name="remind_at" type="datetime-local" aria-label="Remind me at" aria-describedby="todo-remind-zone">
            <button type="button" class="button" data-action="set-reminder">Set reminder</button>
            <button type="button" class="button ghost" data-action="clear-reminder">Clear</button>
          </div>
          <small id="todo-remind-zone" class="muted"></small>
        </fieldset>
        <div class="dialog-actions">
          <button type="button" class="button danger" data-action="delete-todo">Delete</button>
          <button type="button" class="button ghost" data-action="cancel">Cancel</button>
          <button type="submit" class="button primary">Save</button>
        </div>
      </form>`;
    document.body.append(dialog);
    return dialog;
  }

  // ---------------------------------------------------------------- the bell (notifications)
  /// The header's bell: its count is patched by the page's stream (`#bell-count`); the list is
  /// read when it opens. Opening a notification marks it read and shows its todo on its board.
  function initNotifications() {
    const button = $('[data-action="toggle-notifications"]');
    const panel = $("#notifications-panel");
    if (!button || !panel) return;
    const close = () => { panel.hidden = true; button.setAttribute("aria-expanded", "false"); };
    button.addEventListener("click", () => {
      if (!panel.hidden) { close(); return; }
      panel.hidden = false;
      button.setAttribute("aria-expanded", "true");
      loadNotifications();
    });
    document.addEventListener("click", (event) => { if (!panel.hidden && !event.target.closest(".notifications")) close(); });
    document.addEventListener("keydown", (event) => { if (event.key === "Escape" && !panel.hidden) { close(); button.focus(); } });
    $('[data-action="read-all-notifications"]', panel).addEventListener("click", async () => {
      try { await api("POST", "/api/v1/notifications/read", { all: true }); loadNotifications(); } catch (error) { toast(error.message, "error"); }
    });
    document.addEventListener("teamboard:bell", () => { if (!panel.hidden) loadNotifications(); });
  }

  async function loadNotifications() {
    const list = $("#notifications-list");
    const empty = (text) => { const item = document.createElement("li"); item.className = "empty"; item.textContent = text; return item; };
    try {
      const response = await authorized("/api/v1/notifications?limit=20");
      if (!response.ok) throw new Error(await errorMessage(response));
      const { notifications } = await response.json();
      list.replaceChildren(...(notifications.length ? notifications.map(notificationItem) : [empty("No notifications yet.")]));
    } catch (error) { list.replaceChildren(empty(error.message)); }
  }

  function notificationItem(notification) {
    const item = document.createElement("li");
    item.tabIndex = 0;
    item.dataset.notificationId = String(notification.id);
    if (!notification.read_at) item.classList.add("unread");
    const text = document.createElement("span");
    text.textContent = notification.kind === "reminder"
      ? "Reminder: " + notification.title + (notification.late ? " (late: the reminder service was down)" : "")
      : "Assigned to you: " + notification.title;
    const when = document.createElement("small");
    when.textContent = new Date(notification.created_at).toLocaleString();
    item.append(text, when);
    const open = async () => {
      if (!notification.read_at) { try { await api("POST", "/api/v1/notifications/read", { ids: [notification.id] }); } catch { /* still open it */ } }
      location.assign("/app?group=" + encodeURIComponent(notification.group_id) + "&todo=" + encodeURIComponent(notification.todo_id));
    };
    item.addEventListener("click", open);
    item.addEventListener("keydown", (event) => { if (event.key === "Enter") open(); });
    return item;
  }

  /// The bell's stream on a page without a board (`GET /events` without a group).
  async function followBell() {
    let delay = 1000;
    for (;;) {
      try {
        const response = await fetch("/events", { headers: { Authorization: "Bearer " + (await accessToken()), Accept: "text/event-stream" } });
        if (response.status === 401) { await refresh(true); continue; }
        if (!response.ok) throw new Error("stream answered " + response.status);
        delay = 1000;
        await readEvents(response, (event) => { if (event.type === "datastar-patch-elements") Datastar.patchElements(event.data); });
      } catch { /* reconnect below */ }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  }

  /// The profile's time zone (reminders are read in it), read once per page.
  let profileZone = null;
  function profileTimeZone() {
    profileZone ??= api("GET", "/api/v1/me").then((profile) => profile.timezone).catch(() => { profileZone = null; return "UTC"; });
    return profileZone;
  }

  const reminderIcon = `<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M6 16V11a6 6 0 0 1 12 0v5l1.8 2.2H4.2z" fill="currentColor"/><path d="M10 20.2a2.2 2.2 0 0 0 4 0" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>`;

  /// "Dec 24, 09:00" for a reminder's local time (its zone added when not the browser's).
  function reminderText(reminder) {
    const [day, time = "00:00"] = reminder.remind_at.split("T");
    const [y, m, d] = day.split("-").map(Number);
    const [hh, mm] = time.split(":").map(Number);
    const text = new Date(y, m - 1, d, hh, mm).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
    return reminder.timezone && reminder.timezone !== browserZone() ? text + " (" + reminder.timezone + ")" : text;
  }

  // ---------------------------------------------------------------- page: settings
  /// The account's own settings: a new password (every other session ends), sign out everywhere.
  function accountPanel() {
    const panel = document.createElement("section");
    panel.className = "panel account-settings";
    panel.innerHTML = `
      <h2>Your account</h2>
      <form data-action="change-password" class="stack">
        <label>Current password <input type="password" name="current" autocomplete="current-password" required></label>
        <label>New password <input type="password" name="next" autocomplete="new-password" minlength="8" maxlength="128" required></label>
        <button type="submit" class="button primary">Change password</button>
        <p class="muted">Changing it signs you out on every other device.</p>
      </form>
      <button type="button" class="button" data-action="logout-everywhere">Sign out everywhere</button>
      <form data-action="time-zone" class="stack">
        <label>Time zone <select name="timezone" required></select></label>
        <button type="submit" class="button">Save time zone</button>
        <p class="muted">Reminders are read in this zone.</p>
      </form>`;
    const zoneForm = $('form[data-action="time-zone"]', panel);
    const zones = (() => { try { return Intl.supportedValuesOf("timeZone"); } catch { return []; } })();
    const select = zoneForm.timezone;
    select.append(...["UTC", ...zones.filter((zone) => zone !== "UTC")].map((zone) => new Option(zone, zone)));
    api("GET", "/api/v1/me").then((profile) => {
      if (![...select.options].some((option) => option.value === profile.timezone)) select.append(new Option(profile.timezone, profile.timezone));
      select.value = profile.timezone;
    }).catch(() => {});
    zoneForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const profile = await api("PATCH", "/api/v1/me", { timezone: select.value });
        toast("Time zone set to " + profile.timezone + ".");
      } catch (error) { toast(error.message, "error"); }
    });
    const form = $('form[data-action="change-password"]', panel);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const response = await authorized(apiBase + "/api/v1/auth/password", {
          method: "POST", credentials: "include", headers: cookieHeaders,
          body: JSON.stringify({ current_password: form.current.value, new_password: form.next.value }),
        });
        if (!response.ok) throw new Error(await errorMessage(response));
        Session.save(await response.json());
        form.reset();
        toast("Password changed. Other devices are signed out.");
      } catch (error) { toast(error.message, "error"); }
    });
    $('[data-action="logout-everywhere"]', panel).addEventListener("click", () => {
      if (confirm("Sign out on every device, this one included?")) logout(true);
    });
    return panel;
  }

  /// Downloads the group's export: fetched with the access token (never in a URL), then saved
  /// under the server's file name.
  async function exportGroup(groupID, format, button) {
    button.disabled = true;
    try {
      const response = await authorized("/api/v1/groups/" + encodeURIComponent(groupID) + "/export?format=" + encodeURIComponent(format));
      if (!response.ok) throw new Error(await errorMessage(response));
      const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || "teamboard-export." + format;
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      toast("Exported " + name + ".");
    } catch (error) { toast(error.message, "error"); }
    button.disabled = false;
  }

  /// Import: a new group, owned by the signed-in user, from an export file.
  function importPanel() {
    const panel = document.createElement("section");
    panel.className = "panel import-settings";
    panel.innerHTML = `
      <h2>Import a group</h2>
      <p class="muted">A JSON file from a group's Export becomes a new group that you own, with its todos. Members are not added; todos assigned to others become unassigned.</p>
      <label class="button" for="import-file">Choose a file…</label>
      <input type="file" id="import-file" accept="application/json,.json" class="visually-hidden">`;
    const input = $("#import-file", panel);
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (!file) return;
      try {
        // Only what an import reads goes up: a long history would only make the file larger.
        let body;
        try {
          const { events, members, ...document } = JSON.parse(await file.text());
          body = JSON.stringify(document);
        } catch { throw new Error("the file is not an export (not JSON)."); }
        const response = await authorized(apiBase + "/api/v1/groups/import", {
          method: "POST", headers: { "Content-Type": "application/json" }, body,
        });
        if (!response.ok) throw new Error(await errorMessage(response));
        const group = await response.json();
        sessionStorage.setItem("teamboard.info", "Imported “" + group.name + "” with " + group.todos + " todos"
          + (group.assignees_cleared ? " (" + group.assignees_cleared + " now unassigned)." : "."));
        location.assign("/app?group=" + encodeURIComponent(group.id));
      } catch (error) { toast("Not imported: " + error.message, "error"); }
      input.value = "";
    });
    return panel;
  }

  async function initSettings(main, groupID) {
    if (!groupID) {
      const overview = document.createElement("div");
      overview.innerHTML = await fragment("/ui/overview");
      const list = document.createElement("ul");
      list.className = "group-picker";
      for (const card of $$(".group-card[data-group-id]", overview)) {
        const item = document.createElement("li");
        const link = document.createElement("a");
        link.href = "/settings?group=" + encodeURIComponent(card.dataset.groupId);
        link.textContent = $("h2", card).textContent;
        item.append(link);
        list.append(item);
      }
      const intro = document.createElement("p");
      intro.className = "muted";
      intro.textContent = list.children.length ? "Pick a group to manage its members and roles." : "You are not in any group yet.";
      main.replaceChildren(intro, list, importPanel(), accountPanel());
      return;
    }
    if (!(await load(main, "/ui/settings?group_id=" + encodeURIComponent(groupID)))) return;
    main.append(accountPanel());
    const path = "/api/v1/groups/" + encodeURIComponent(groupID);
    const reload = () => initSettings(main, groupID);
    const run = async (work, done) => {
      try { await work(); toast(done); await reload(); } catch (error) { toast(error.message, "error"); await reload(); }
    };
    for (const form of $$('form[data-action="add-member"]', main)) {
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const username = form.username.value.trim().toLowerCase();
        if (!username) return;
        run(() => api("POST", path + "/members", { username, role: form.role.value }), username + " was added as " + form.role.value + ".");
      });
    }
    for (const select of $$('select[data-action="change-role"]', main)) {
      select.addEventListener("change", () => run(() => api("PATCH", path + "/members/role", { username: select.dataset.username, role: select.value }),
                                                  select.dataset.username + " is now " + select.value + "."));
    }
    for (const button of $$('button[data-action="remove-member"]', main)) {
      button.addEventListener("click", async () => {
        const self = button.dataset.self === "true";
        if (!confirm(self ? "Leave this group?" : "Remove " + button.dataset.username + " from this group?")) return;
        try {
          await api("DELETE", path + "/members/" + encodeURIComponent(button.dataset.username));
          if (self) { location.assign("/app"); return; }
          toast(button.dataset.username + " was removed.");
        } catch (error) { toast(error.message, "error"); }
        reload();
      });
    }
    for (const button of $$('button[data-action="export"]', main)) {
      button.addEventListener("click", () => exportGroup(groupID, button.dataset.format, button));
    }
    $('button[data-action="delete-group"]', main)?.addEventListener("click", async () => {
      if (!confirm("Delete this group for everyone?")) return;
      try { await api("DELETE", path); location.assign("/app"); } catch (error) { toast(error.message, "error"); }
    });
  }

  // ---------------------------------------------------------------- boot
  document.addEventListener("DOMContentLoaded", async () => {
    if (page === "login") { initLogin(); return; }
    const signedIn = await resume();
    if (page === "architecture") { if (signedIn && initChrome()) followBell(); else $(".account")?.setAttribute("hidden", ""); return; }
    if (!initChrome()) return;
    const notice = sessionStorage.getItem("teamboard.notice");
    if (notice) { sessionStorage.removeItem("teamboard.notice"); toast(notice, "error"); }
    const info = sessionStorage.getItem("teamboard.info");
    if (info) { sessionStorage.removeItem("teamboard.info"); toast(info); }
    const main = $("#main");
    const group = params.get("group");
    if (page === "app") (group ? initWorkspace(main, group) : initOverview(main));
    else if (page === "settings") initSettings(main, group);
    // A board's stream carries the bell; any other page opens one for the bell alone.
    if (!(page === "app" && group)) followBell();
    offerTimeZone();
  });

  /// Once per browser: when the profile still has the default zone and the browser knows another,
  /// offer it (the profile's zone is what reminders are read in).
  async function offerTimeZone() {
    const zone = browserZone();
    if (!zone || zone === "UTC" || localStorage.getItem("teamboard.zoneOffered")) return;
    try {
      const profile = await api("GET", "/api/v1/me");
      localStorage.setItem("teamboard.zoneOffered", "1");
      if (profile.timezone !== "UTC") return;
      toastWithAction("Your time zone is UTC here. Use " + zone + "?", "Use " + zone, async () => {
        try { await api("PATCH", "/api/v1/me", { timezone: zone }); toast("Time zone set to " + zone + "."); } catch (error) { toast(error.message, "error"); }
      }, 15_000);
    } catch { /* offered again on the next page */ }
  }

  function browserZone() {
    try { return Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch { return ""; }
  }
})();
