import Contracts
import Foundation

/// The HTML fragments the pages load for the signed-in user (`GET /ui/...`). Rendered here, on
/// the server, from the projection; every user-provided string is escaped. Controls a role may not
/// use are left out or disabled (the APIs enforce the same rules regardless).
public enum UIFragments {
    // MARK: Groups overview

    public static func overview(_ groups: [ReadStore.GroupSummary]) -> String {
        let active = groups.reduce(0) { $0 + ($1.todoCounts["todo"] ?? 0) + ($1.todoCounts["in_progress"] ?? 0) }
        let members = groups.reduce(0) { $0 + $1.memberCount }
        var html = """
            <section class="stats" aria-label="Totals">
              \(stat("Total groups", groups.count, "groups you belong to", id: "total-groups"))
              \(stat("Active tasks", active, "to do or in progress", id: "active-tasks"))
              \(stat("Total members", members, "across your groups", id: "total-members"))
            </section>
            <section class="group-grid" aria-label="Your groups">
            """
        for (index, group) in groups.enumerated() {
            let done = group.todoCounts["done"] ?? 0
            let percent = group.totalTodos == 0 ? 0 : Int((Double(done) / Double(group.totalTodos) * 100).rounded())
            let id = HTML.escape(group.groupID)
            html += """
                <article class="group-card accent-\(index % 5)" data-group-id="\(id)">
                  <div class="group-card-top">
                    <span class="group-icon" aria-hidden="true">\(HTML.escape(initials(group.groupName)))</span>
                    <a class="icon-button" href="/settings?group=\(id)" aria-label="Settings of \(HTML.escape(group.groupName))">\(Icon.gear)</a>
                  </div>
                  <h2><a class="stretched" href="/app?group=\(id)">\(HTML.escape(group.groupName))</a></h2>
                  <p class="muted">\(Icon.person) \(group.memberCount) \(group.memberCount == 1 ? "Member" : "Members") · \(HTML.escape(group.role.capitalized))</p>
                  <div class="progress-label"><span>Progress</span><strong>\(percent)%</strong></div>
                  <div class="progress" role="progressbar" aria-label="Progress of \(HTML.escape(group.groupName))" aria-valuemin="0" aria-valuemax="100" aria-valuenow="\(percent)"><span></span></div>
                  <p class="caption">\(done) of \(group.totalTodos) tasks completed</p>
                </article>
                """
        }
        html += """
              <form class="group-card new-group" data-action="create-group">
                <span class="round-icon" aria-hidden="true">\(Icon.plus)</span>
                <label for="new-group-name">Create New Group</label>
                <p class="muted">Start collaborating with a new team</p>
                <div class="inline-form">
                  <input id="new-group-name" name="name" required maxlength="100" placeholder="Group name">
                  <button type="submit" class="button primary">Create</button>
                </div>
              </form>
            </section>
            """
        if groups.isEmpty { html += #"<p class="muted empty">You are not in any group yet: create one, or ask an owner to add you.</p>"# }
        return html
    }

    static func stat(_ label: String, _ value: Int, _ note: String, id: String) -> String {
        """
        <div class="stat"><span class="stat-label">\(label)</span><strong id="\(id)">\(value)</strong><span class="muted">\(note)</span></div>
        """
    }

    // MARK: Group workspace (board + members)

    public struct Workspace: Sendable {
        public var group: ReadStore.GroupSummary
        public var viewer: String
        public var role: GroupRole
        public var todos: [ReadStore.Todo]
        public var members: [ReadStore.Member]
        /// The projection offset the board reflects; the live stream resumes after it.
        public var groupVersion: Int64

        public init(group: ReadStore.GroupSummary, viewer: String, role: GroupRole, todos: [ReadStore.Todo],
                    members: [ReadStore.Member], groupVersion: Int64) {
            self.group = group
            self.viewer = viewer
            self.role = role
            self.todos = todos
            self.members = members
            self.groupVersion = groupVersion
        }
    }

    public static func workspace(_ workspace: Workspace) -> String {
        let id = HTML.escape(workspace.group.groupID)
        var html = """
            <div class="workspace" id="workspace" data-group-id="\(id)" data-group-name="\(HTML.escape(workspace.group.groupName))"
                 data-role="\(workspace.role.rawValue)" data-version="\(workspace.groupVersion)">
            <div class="board-bar">
              <p class="crumbs"><a href="/app">Groups</a> / <strong>\(HTML.escape(workspace.group.groupName))</strong></p>
              <div class="board-actions">
                <span class="live" data-live-state="connecting" aria-live="polite">connecting…</span>
                <div class="view-switch" role="group" aria-label="View">
                  <button type="button" class="button ghost" data-view="board" aria-pressed="true">Board</button>
                  <button type="button" class="button ghost" data-view="calendar" aria-pressed="false">Calendar</button>
                </div>
                <button type="button" class="button ghost" data-action="toggle-feed" aria-pressed="false" aria-controls="feed">Activity</button>
                <button type="button" class="button ghost" data-action="open-trash">Trash</button>
                <a class="button ghost" href="/settings?group=\(id)">\(Icon.gear) Settings</a>
                <button type="button" class="button primary" data-action="new-todo" data-status="todo">\(Icon.plus) New todo</button>
              </div>
            </div>
            <div class="board-layout">
            <section class="board" aria-label="Board">
            """
        for status in TodoStatus.allCases {
            let cards = workspace.todos.filter { $0.status == status }.sorted { ($0.position, $0.todoID) < ($1.position, $1.todoID) }
            html += """
                <section class="column" data-status="\(status.rawValue)" aria-labelledby="heading-\(status.rawValue)">
                  <header class="column-head">
                    <span class="dot \(status.rawValue)" aria-hidden="true"></span>
                    <h2 id="heading-\(status.rawValue)">\(columnTitle(status))</h2>
                    <span class="count" data-count-for="\(status.rawValue)">\(cards.count)</span>
                    <button type="button" class="icon-button" data-action="new-todo" data-status="\(status.rawValue)" aria-label="New todo in \(columnTitle(status))">\(Icon.plus)</button>
                  </header>
                  <div class="cards" id="\(BoardFragments.columnID(status))">\(cards.map { BoardFragments.card(.init($0)) }.joined())</div>
                  <p class="drop-hint" aria-hidden="true">+ Drop tasks here</p>
                </section>
                """
        }
        html += """
            </section>
            <section class="calendar" id="calendar" hidden aria-label="Calendar"></section>
            <aside class="side-panels">
              <section class="panel members-panel" id="members-panel" aria-labelledby="members-heading">\(membersPanel(workspace.members, viewer: workspace.viewer, role: workspace.role))</section>
              <section class="panel feed" id="feed" hidden aria-labelledby="feed-heading">
                <h2 id="feed-heading">Activity</h2>
                <ol class="feed-items" id="feed-items" aria-live="polite"></ol>
              </section>
            </aside>
            </div>
            </div>
            """
        return html
    }

    static func columnTitle(_ status: TodoStatus) -> String {
        switch status {
        case .todo: "To do"
        case .inProgress: "In progress"
        case .done: "Done"
        }
    }

    /// The members panel; reloaded by the page whenever a `member.*` event arrives.
    public static func membersPanel(_ members: [ReadStore.Member], viewer: String, role: GroupRole) -> String {
        let ordered = members.sorted { (rank($0.role), $0.username) < (rank($1.role), $1.username) }
        let leads = ordered.filter { $0.role != GroupRole.member.rawValue }
        let others = ordered.filter { $0.role == GroupRole.member.rawValue }
        var html = """
            <div class="panel-head"><h2 id="members-heading">Members</h2><span class="online-count" id="online-count" aria-live="polite"></span><span class="badge">\(HTML.escape(role.rawValue.uppercased())) VIEW</span></div>
            """
        if GroupPolicy.allows(role, .addMember(as: .member)) {
            html += """
                <form class="add-member" data-action="add-member">
                  <label for="add-member-name">Add a member by username</label>
                  <div class="inline-form">
                    <input id="add-member-name" name="username" required placeholder="username" autocomplete="off">
                    <button type="submit" class="button primary">Add</button>
                  </div>
                </form>
                """
        }
        func list(_ title: String, _ people: [ReadStore.Member]) -> String {
            guard !people.isEmpty else { return "" }
            return "<h3 class=\"list-title\">\(title)</h3><ul class=\"people\">" + people.map { member in
                let you = member.userID == viewer ? " <small>(you)</small>" : ""
                return """
                    <li data-username="\(HTML.escape(member.username))"><span class="avatar" aria-hidden="true">\(HTML.escape(initials(member.username)))</span>\
                    <span class="person"><strong>\(HTML.escape(member.username))</strong>\(you)<small>\(HTML.escape(member.role.capitalized))</small></span>\
                    <span class="presence visually-hidden"></span></li>
                    """
            }.joined() + "</ul>"
        }
        return html + list("Owners &amp; admins", leads) + list("Members", others)
    }

    // MARK: Settings (members and roles)

    public static func settings(group: ReadStore.GroupSummary, members: [ReadStore.Member], viewer: String, role: GroupRole) -> String {
        let id = HTML.escape(group.groupID)
        let canAdd = GroupPolicy.allows(role, .addMember(as: .member))
        let canAddAdmins = GroupPolicy.allows(role, .addMember(as: .admin))
        let canChangeRoles = GroupPolicy.allows(role, .changeRoles)
        var html = """
            <div class="settings" id="settings" data-group-id="\(id)" data-role="\(role.rawValue)">
            <p class="crumbs"><a href="/app?group=\(id)">\(HTML.escape(group.groupName))</a> / <strong>Settings</strong> <span class="badge">\(HTML.escape(group.groupName))</span></p>
            <section class="card-box invite">
              <div><h2>Invite New Members</h2><p class="muted">Add collaborators to \(HTML.escape(group.groupName)) by username.</p></div>
            """
        if canAdd {
            html += """
                <form class="inline-form" data-action="add-member">
                  <label class="visually-hidden" for="invite-username">Username</label>
                  <input id="invite-username" name="username" required placeholder="Search by username" autocomplete="off">
                  <label class="visually-hidden" for="invite-role">Role</label>
                  <select id="invite-role" name="role">
                    <option value="member">Member</option>
                    \(canAddAdmins ? #"<option value="admin">Admin</option><option value="owner">Owner</option>"# : "")
                  </select>
                  <button type="submit" class="button primary">Add member</button>
                </form>
                """
        } else {
            html += #"<p class="notice">Only owners and admins can add members.</p>"#
        }
        html += """
            </section>
            <div class="settings-grid">
            <section class="card-box">
              <h2>Team Members (\(members.count))</h2>
              <table class="members-table">
                <thead><tr><th scope="col">User</th><th scope="col">Role</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
                <tbody>
            """
        for member in members.sorted(by: { (rank($0.role), $0.username) < (rank($1.role), $1.username) }) {
            let name = HTML.escape(member.username)
            let isSelf = member.userID == viewer
            let target = GroupRole(rawValue: member.role) ?? .member
            var roleCell: String
            if canChangeRoles {
                roleCell = "<label class=\"visually-hidden\" for=\"role-\(name)\">Role of \(name)</label><select id=\"role-\(name)\" data-action=\"change-role\" data-username=\"\(name)\">"
                for option in [GroupRole.owner, .admin, .member] {
                    roleCell += "<option value=\"\(option.rawValue)\"\(option == target ? " selected" : "")>\(option.rawValue.capitalized)</option>"
                }
                roleCell += "</select>"
            } else {
                roleCell = "<span class=\"role-pill \(target.rawValue)\">\(target.rawValue.capitalized)</span>"
            }
            var action = ""
            if isSelf {
                action = "<button type=\"button\" class=\"button ghost small\" data-action=\"remove-member\" data-username=\"\(name)\" data-self=\"true\">Leave</button>"
            } else if GroupPolicy.allows(role, .removeMember(target: target, isSelf: false)) {
                action = "<button type=\"button\" class=\"button danger small\" data-action=\"remove-member\" data-username=\"\(name)\" aria-label=\"Remove \(name)\">Remove</button>"
            }
            html += """
                <tr data-username="\(name)"><td><span class="who"><span class="avatar" aria-hidden="true">\(HTML.escape(initials(member.username)))</span> <strong>\(name)</strong>\(isSelf ? " <small>(you)</small>" : "")</span></td><td>\(roleCell)</td><td class="actions">\(action)</td></tr>
                """
        }
        html += """
                </tbody>
              </table>
            </section>
            <section class="card-box roles">
              <h2>Roles &amp; Permissions</h2>
              <dl>
                <dt>Owner</dt><dd>Everything, including roles and deleting the group. A group always keeps at least one owner.</dd>
                <dt>Admin</dt><dd>Adds and removes members, and edits, moves and deletes anyone's todos.</dd>
                <dt>Member</dt><dd>Creates todos, and edits, moves and deletes their own; moves the ones assigned to them.</dd>
              </dl>
              <p class="muted">Your role here: <strong>\(role.rawValue.capitalized)</strong></p>
            </section>
            </div>
            <section class="card-box">
              <h2>Permission Matrix</h2>
              <p class="muted">What each role may do in this group (the server enforces the same table).</p>
              \(permissionMatrix())
            </section>
            """
        if GroupPolicy.allows(role, .exportGroup) {
            html += """
                <section class="card-box export-box">
                  <h2>Export</h2>
                  <p class="muted">Download the group: its members, todos and whole history as JSON (which Import reads back as a new group), or its todos as CSV.</p>
                  <div class="button-row">
                    <button type="button" class="button" data-action="export" data-format="json">Export JSON</button>
                    <button type="button" class="button ghost" data-action="export" data-format="csv">Export CSV</button>
                  </div>
                </section>
                """
        }
        if GroupPolicy.allows(role, .deleteGroup) {
            html += """
                <section class="card-box danger-zone">
                  <h2>Delete this group</h2>
                  <p class="muted">Removes the group and every membership. Its history stays in the event log.</p>
                  <button type="button" class="button danger" data-action="delete-group">Delete group</button>
                </section>
                """
        }
        return html + "</div>"
    }

    /// DESIGN §5's table, computed from `GroupPolicy` itself so the page cannot drift from the rules.
    public static func permissionMatrix() -> String {
        let rows: [(String, GroupCapability)] = [
            ("Create a group", .createGroup),
            ("Add a member as member", .addMember(as: .member)),
            ("Add a member as admin, change roles", .changeRoles),
            ("Remove a member", .removeMember(target: .member, isSelf: false)),
            ("Remove an admin or owner", .removeMember(target: .admin, isSelf: false)),
            ("Leave the group", .removeMember(target: .member, isSelf: true)),
            ("Delete the group", .deleteGroup),
            ("Create, edit, move, delete, restore own todos", .writeOwnTodo),
            ("Move todos assigned to you", .moveTodoAssignedToSelf),
            ("Edit, move, delete, restore others' todos", .writeOthersTodo),
            ("Read todos, history, trash, live stream", .read),
            ("Export the group", .exportGroup),
        ]
        var html = "<table class=\"matrix\"><thead><tr><th scope=\"col\">Permission</th><th scope=\"col\">Owner</th><th scope=\"col\">Admin</th><th scope=\"col\">Member</th><th scope=\"col\">Non-member</th></tr></thead><tbody>"
        for (label, capability) in rows {
            html += "<tr><th scope=\"row\">\(label)</th>"
            for role in [GroupRole.owner, .admin, .member, nil] {
                html += "<td>\(GroupPolicy.allows(role, capability) ? Icon.check : Icon.cross)</td>"
            }
            html += "</tr>"
        }
        return html + "</tbody></table>"
    }

    static func rank(_ role: String) -> Int {
        switch role {
        case "owner": 0
        case "admin": 1
        default: 2
        }
    }

    static func initials(_ name: String) -> String {
        let words = name.split(whereSeparator: { $0 == " " || $0 == "." || $0 == "_" || $0 == "-" })
        let second = words.count >= 2 ? words[1].first : nil
        let letters = second.map { $0.isLetter } == true ? [words[0].first, second].compactMap { $0 } : Array(name.prefix(2))
        return String(letters).uppercased()
    }
}
