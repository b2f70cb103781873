import Foundation
import Sharding

/// The server-rendered pages (DESIGN §7). Each is a complete HTML document that works as a shell;
/// `/assets/app.js` signs the user in, loads the session's fragments (`/ui/...`, rendered by
/// `UIFragments`) and keeps them live over SSE. No third-party assets: everything is served here.
public enum Pages {
    public enum Page: String, Sendable {
        case login, app, settings, architecture

        var title: String {
            switch self {
            case .login: "Sign in"
            case .app: "Workspace"
            case .settings: "Group settings"
            case .architecture: "How it works"
            }
        }
    }

    /// `commandAPI` is the command-api's base URL as the browser reaches it ("" = same origin).
    public static func render(_ page: Page, commandAPI: String) -> String {
        let body: String
        switch page {
        case .login: body = login()
        case .app: body = shell(page, heading: "Groups", actions: """
            <button type="button" class="button primary" data-action="focus-new-group">\(Icon.plus) Create New Group</button>
            """, content: loading)
        case .settings: body = shell(page, heading: "Group Management", actions: "", content: loading)
        case .architecture: body = shell(page, heading: "How it works", actions: "", content: architecture())
        }
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="command-api" content="\(HTML.escape(commandAPI))">
            <title>\(page.title) · Teamboard</title>
            <link rel="icon" href="/assets/icon.svg" type="image/svg+xml">
            <link rel="stylesheet" href="/assets/app.css">
            <script src="/assets/app.js" defer></script>
            </head>
            <body data-page="\(page.rawValue)"\(page == .login || page == .architecture ? "" : " data-auth=\"required\"")>
            \(body)
            <div id="toasts" class="toasts" role="status" aria-live="polite"></div>
            </body>
            </html>
            """
    }

    static let loading = #"<p class="muted loading">Loading…</p>"#

    static func shell(_ page: Page, heading: String, actions: String, content: String) -> String {
        // The settings link keeps the selected group (the script adds it).
        func link(_ target: Page, _ label: String, _ icon: String) -> String {
            let current = target == page ? #" aria-current="page""# : ""
            let keep = target == .settings ? " data-keep-group" : ""
            return #"<a class="nav-link" href="/\#(target.rawValue)"\#(current)\#(keep)>\#(icon)<span>\#(label)</span></a>"#
        }
        return """
            <div class="layout">
            <aside class="sidebar">
              <a class="brand" href="/app">\(Icon.logo)<span>Teamboard</span></a>
              <nav aria-label="Main">
                \(link(.app, "Groups", Icon.groups))
                \(link(.settings, "Settings", Icon.gear))
                \(link(.architecture, "How it works", Icon.flow))
              </nav>
              <div class="account" data-session-only>
                <span class="avatar" data-initials aria-hidden="true"></span>
                <span class="account-name"><strong data-username></strong><small>Signed in</small></span>
                <button type="button" class="button ghost small" data-action="logout">Sign out</button>
              </div>
            </aside>
            <div class="page">
              <header class="topbar">
                <h1 id="page-title">\(HTML.escape(heading))</h1>
                <form class="search" role="search" data-session-only>
                  <label class="visually-hidden" for="search">Search todos</label>
                  <input id="search" type="search" placeholder="Search todos" autocomplete="off" spellcheck="false" maxlength="200"
                         role="combobox" aria-expanded="false" aria-controls="search-results" aria-autocomplete="list">
                  <kbd class="search-key" aria-hidden="true">/</kbd>
                  <ul id="search-results" class="search-results" role="listbox" aria-label="Search results" hidden></ul>
                </form>
                <div class="notifications" data-session-only>
                  <button type="button" class="bell" data-action="toggle-notifications" aria-haspopup="true" aria-expanded="false"
                          aria-controls="notifications-panel" title="Notifications">\(Icon.bell)<span class="visually-hidden">Notifications</span><span id="bell-count" class="bell-count" data-unread="0">0</span></button>
                  <section id="notifications-panel" class="notifications-panel" aria-label="Notifications" hidden>
                    <header><h2>Notifications</h2><button type="button" class="link" data-action="read-all-notifications">Mark all read</button></header>
                    <ul id="notifications-list"></ul>
                  </section>
                </div>
                <div class="topbar-actions">\(actions)</div>
              </header>
              <main id="main" tabindex="-1">\(content)</main>
            </div>
            </div>
            """
    }

    static func login() -> String {
        """
        <div class="login">
          <section class="login-hero" aria-hidden="true">
            <div class="hero-brand">\(Icon.logo)<span>Teamboard</span></div>
            <p class="hero-title">Elevate your team's productivity.</p>
            <p class="hero-text">Manage your groups, tasks and role-based permissions in one place, live for everyone.</p>
          </section>
          <section class="login-panel">
            <form id="auth-form" class="auth-form" data-mode="login" novalidate>
              <h1 data-login-only>Welcome back</h1>
              <h1 data-register-only>Create your account</h1>
              <p class="muted" data-login-only>Please enter your details to sign in to your account.</p>
              <p class="muted" data-register-only>Pick a username and a password to get started.</p>
              <div id="auth-error" class="form-error" role="alert" aria-live="assertive"></div>
              <label for="username">Username</label>
              <input id="username" name="username" autocomplete="username" required minlength="3" maxlength="32"
                     pattern="[A-Za-z0-9_.\\-]{3,32}" placeholder="your.name" aria-describedby="username-hint">
              <small id="username-hint" class="hint">3–32 letters, digits, '.', '_' or '-'.</small>
              <label for="password">Password</label>
              <input id="password" name="password" type="password" autocomplete="current-password" required minlength="8" maxlength="128"
                     placeholder="••••••••" aria-describedby="password-hint">
              <small id="password-hint" class="hint">At least 8 characters.</small>
              <button type="submit" class="button primary block" data-login-only>Sign In</button>
              <button type="submit" class="button primary block" data-register-only>Create account</button>
              <p class="switch" data-login-only>Don't have an account yet? <button type="button" class="link" data-action="show-register">Create an account</button></p>
              <p class="switch" data-register-only>Already have an account? <button type="button" class="link" data-action="show-login">Sign in</button></p>
            </form>
            <p class="footnote">Teamboard — a realtime collaborative todo pipeline. <a href="/architecture">How it works</a></p>
          </section>
        </div>
        """
    }

    static func architecture() -> String {
        """
        <div class="prose">
          <p class="lead">Every change you make travels through a pipeline of small services connected by a message
          bus. Nothing is written to the database directly by the API: commands become events, and events
          become the tables and the live updates you see.</p>
          <ol class="pipeline" aria-label="The pipeline">
            <li><strong>Browser</strong><span>POST /api/v1/command</span></li>
            <li><strong>command-api</strong><span>checks the token, the input and your membership; publishes the command</span></li>
            <li><strong>NATS JetStream · COMMANDS</strong><span><code>app.command.&lt;shard&gt;.group.&lt;group&gt;</code></span></li>
            <li><strong>domain-engine</strong><span>decides: one event per command (or a rejection), in order per group</span></li>
            <li><strong>NATS JetStream · EVENTS</strong><span><code>app.event.&lt;shard&gt;.group.&lt;group&gt;</code></span></li>
            <li><strong>data-sink</strong><span>projects events into Postgres (<code>todo_events</code>, <code>todos</code>, offsets)</span></li>
            <li><strong>streamer</strong><span>pages, reads, and the live SSE stream of each group</span></li>
          </ol>
          <h2>Services</h2>
          <dl class="facts">
            <dt>command-api</dt><dd>Accounts, sessions, groups and roles (Postgres with an outbox), and command intake. Answers 202 once the command is stored in JetStream.</dd>
            <dt>domain-engine</dt><dd>A durable consumer on COMMANDS. Keeps each group's state, applies the rules (who may change which todo), and publishes the outcome with a per-group sequence check, so two engines never write the same version.</dd>
            <dt>data-sink</dt><dd>A durable consumer on EVENTS. Writes batches in one transaction, idempotently, and records each group's projection offset.</dd>
            <dt>streamer</dt><dd>Serves these pages, the read API and <code>GET /events</code>: one NATS subscription per group per process, shared by every browser watching that group.</dd>
          </dl>
          <h2>Shards and order</h2>
          <p>A group's commands and events always go to the same shard: <code>shard = crc32(group_id) mod \(Shard.count)</code>.
          Within a group everything is ordered by its <em>group version</em>, which rises by exactly one per event.
          The live stream uses that version as the SSE event id: a reconnecting browser says which version it saw last,
          and the streamer replays the rest from JetStream before going live — no gap, no duplicate.</p>
          <h2>Tables</h2>
          <dl class="facts">
            <dt>users, refresh_tokens</dt><dd>accounts; refresh tokens stored only as hashes, rotated on every use</dd>
            <dt>groups, group_members, command_outbox</dt><dd>groups and roles, written by command-api</dd>
            <dt>todo_events, todos, group_projection_offsets</dt><dd>the projection, written only by the data sink</dd>
          </dl>
        </div>
        """
    }
}

/// Inline SVG icons drawn for this project (no icon font, no download).
enum Icon {
    static let bell = ##"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M6 16V11a6 6 0 0 1 12 0v5l1.8 2.2H4.2z" fill="currentColor"/><path d="M10 20.2a2.2 2.2 0 0 0 4 0" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>"##
    static let logo = ##"<svg class="logo" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8" fill="#1683f0"/><path d="M9 16.5l4.5 4.5L23 11.5" fill="none" stroke="#fff" stroke-width="3" stroke-linecap="round" stroke-linejoin="round"/></svg>"##
    static let plus = ##"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><path d="M12 5v14M5 12h14" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/></svg>"##
    static let gear = ##"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="12" r="3.2" fill="none" stroke="currentColor" stroke-width="2"/><path d="M12 2.5v3M12 18.5v3M2.5 12h3M18.5 12h3M5.3 5.3l2.1 2.1M16.6 16.6l2.1 2.1M5.3 18.7l2.1-2.1M16.6 7.4l2.1-2.1" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>"##
    static let groups = ##"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="9" cy="8" r="3.5" fill="currentColor"/><circle cx="17" cy="9" r="2.5" fill="currentColor" opacity=".7"/><path d="M2.5 19c0-3.6 2.9-6 6.5-6s6.5 2.4 6.5 6z" fill="currentColor"/><path d="M15.5 13.2c3 .1 5.5 2.1 5.5 5.3h-4" fill="currentColor" opacity=".7"/></svg>"##
    static let flow = ##"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><rect x="2.5" y="4" width="6" height="6" rx="1.5" fill="currentColor"/><rect x="15.5" y="14" width="6" height="6" rx="1.5" fill="currentColor"/><path d="M8.5 7h5a2 2 0 0 1 2 2v5" fill="none" stroke="currentColor" stroke-width="2"/></svg>"##
    static let person = ##"<svg class="icon" viewBox="0 0 24 24" aria-hidden="true"><circle cx="12" cy="8" r="4" fill="currentColor"/><path d="M4 20c0-4 3.6-6.5 8-6.5s8 2.5 8 6.5z" fill="currentColor"/></svg>"##
    static let check = ##"<svg class="icon yes" viewBox="0 0 24 24" role="img" aria-label="allowed"><circle cx="12" cy="12" r="10" fill="currentColor"/><path d="M7.5 12.5l3 3 6-6.5" fill="none" stroke="#0b1220" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/></svg>"##
    static let cross = ##"<svg class="icon no" viewBox="0 0 24 24" role="img" aria-label="not allowed"><circle cx="12" cy="12" r="10" fill="currentColor"/><path d="M8.5 8.5l7 7M15.5 8.5l-7 7" stroke="#0b1220" stroke-width="2.2" stroke-linecap="round"/></svg>"##
}
