import Contracts
import Foundation
import Testing
@testable import Streamer

@Suite("pages and fragments")
struct UIFragmentsTests {
    static let hostile = #"<script>alert(1)</script>"#
    static let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"

    static func group(name: String = "Design", role: String = "owner", done: Int = 1, total: Int = 4) -> ReadStore.GroupSummary {
        ReadStore.GroupSummary(groupID: "g-1", groupName: name, role: role, memberCount: 3,
                               todoCounts: ["todo": total - done, "in_progress": 0, "done": done], totalTodos: total, groupVersion: 7)
    }

    static func todo(_ id: String, title: String, status: TodoStatus, position: Double, createdBy: String = "u-1") -> ReadStore.Todo {
        ReadStore.Todo(todoID: id, title: title, notes: "", status: status, position: position, dueDate: nil, assignee: nil,
                       labels: [], createdBy: createdBy, createdByName: "alice", version: 1)
    }

    @Test func aRemindersTimeAndZoneReachNobodyThroughTheStreamer() {
        let event = TodoEvent(eventID: "e9", commandID: "c9", eventType: .reminderSet, groupID: "g-1", todoID: "t-1",
                              actorUserID: "u-1", actorName: "ann", occurredAt: Date(timeIntervalSince1970: 0), shardID: 0,
                              groupVersion: 9, title: "Call", remindAt: "2026-12-24T09:00:00", timezone: "Asia/Kathmandu",
                              fireAt: Date(timeIntervalSince1970: 1_798_000_000))
        let json = String(decoding: event.jsonBytes(), as: UTF8.self)
        for text in [RenderedEvent(event: event, json: json).text, ReminderPrivacy.shared(type: "reminder.set", json: json)] {
            #expect(text.contains("reminder.set") && text.contains("Call") && text.contains("ann"))
            #expect(!text.contains("Kathmandu") && !text.contains("remind_at") && !text.contains("fire_at"), "\(text)")
        }
        #expect(ReminderPrivacy.shared(type: "todo.created", json: json) == json, "other events pass unchanged")
    }

    @Test func aDeleteRemovesTheCardAndARestorePutsItBack() {
        func rendered(_ type: EventType, version: Int64) -> RenderedEvent {
            let event = TodoEvent(eventID: "e\(version)", commandID: "c\(version)", eventType: type, groupID: "g-1", todoID: "t-1",
                                  actorUserID: "u-1", actorName: "ann", occurredAt: Date(timeIntervalSince1970: 0), shardID: 0,
                                  groupVersion: version, title: "Back", status: .done, position: 2, version: version)
            return RenderedEvent(event: event, json: String(decoding: event.jsonBytes(), as: UTF8.self))
        }
        let deleted = rendered(.todoDeleted, version: 2).text
        #expect(deleted.contains("selector #todo-t-1") && deleted.contains("mode remove") && !deleted.contains("<article"))
        let restored = rendered(.todoRestored, version: 3).text
        #expect(restored.contains("selector #cards-done") && restored.contains("<h3 class=\"card-title\">Back</h3>"))
    }

    @Test func overviewEscapesNamesAndShowsProgressAndTotals() {
        let html = UIFragments.overview([Self.group(name: Self.hostile, done: 1, total: 4)])
        #expect(!html.contains(Self.hostile))
        #expect(html.contains(Self.escaped))
        #expect(html.contains(#"aria-valuenow="25""#))
        #expect(html.contains("1 of 4 tasks completed"))
        #expect(html.contains(#"<strong id="active-tasks">3</strong>"#))
        #expect(html.contains(#"href="/app?group=g-1""#))
    }

    @Test func workspaceRendersColumnsInBoardOrderWithItsOffset() {
        let todos = [Self.todo("b", title: "second", status: .todo, position: 2), Self.todo("a", title: Self.hostile, status: .todo, position: 1),
                     Self.todo("c", title: "finished", status: .done, position: 1)]
        let html = UIFragments.workspace(.init(group: Self.group(), viewer: "u-1", role: .owner, todos: todos,
                                               members: [.init(userID: "u-1", username: "alice", role: "owner")], groupVersion: 42))
        #expect(html.contains(#"data-version="42""#))
        #expect(!html.contains(Self.hostile))
        let first = html.range(of: #"id="todo-a""#)?.lowerBound
        let second = html.range(of: #"id="todo-b""#)?.lowerBound
        #expect(first != nil && second != nil && first! < second!, "cards sorted by position")
        #expect(html.contains(#"<span class="count" data-count-for="todo">2</span>"#))
        #expect(html.contains(#"<span class="count" data-count-for="done">1</span>"#))
        for status in TodoStatus.allCases { #expect(html.contains(#"id="cards-\#(status.rawValue)""#)) }
    }

    @Test func membersPanelOffersAddingOnlyToOwnersAndAdmins() {
        let members: [ReadStore.Member] = [.init(userID: "u-1", username: "alice", role: "owner"), .init(userID: "u-2", username: "bob", role: "member")]
        #expect(UIFragments.membersPanel(members, viewer: "u-1", role: .owner).contains(#"data-action="add-member""#))
        #expect(UIFragments.membersPanel(members, viewer: "u-1", role: .admin).contains(#"data-action="add-member""#))
        #expect(!UIFragments.membersPanel(members, viewer: "u-2", role: .member).contains(#"data-action="add-member""#))
    }

    @Test func settingsControlsFollowTheViewersRole() {
        let members: [ReadStore.Member] = [.init(userID: "u-1", username: "alice", role: "owner"), .init(userID: "u-2", username: "bob", role: "admin"),
                                           .init(userID: "u-3", username: "carol", role: "member")]
        let owner = UIFragments.settings(group: Self.group(), members: members, viewer: "u-1", role: .owner)
        #expect(owner.contains(#"data-action="change-role""#) && owner.contains(#"data-action="delete-group""#))
        #expect(owner.contains(#"<option value="admin">Admin</option>"#), "owners may add admins")

        let admin = UIFragments.settings(group: Self.group(role: "admin"), members: members, viewer: "u-2", role: .admin)
        #expect(!admin.contains(#"data-action="change-role""#) && !admin.contains(#"data-action="delete-group""#))
        #expect(!admin.contains(#"<option value="admin">Admin</option>"#), "admins add members only")
        #expect(admin.contains(#"aria-label="Remove carol""#) && !admin.contains(#"aria-label="Remove alice""#))

        let member = UIFragments.settings(group: Self.group(role: "member"), members: members, viewer: "u-3", role: .member)
        #expect(!member.contains(#"data-action="add-member""#) && !member.contains(#"aria-label="Remove"#))
        #expect(member.contains(#"data-username="carol" data-self="true">Leave"#))
    }

    @Test func permissionMatrixIsTheGroupPolicy() {
        let html = UIFragments.permissionMatrix()
        // "Delete the group": owner only.
        let row = html.components(separatedBy: "<tr>").first { $0.contains("Delete the group") } ?? ""
        #expect(row.components(separatedBy: "aria-label=\"allowed\"").count - 1 == 1)
        #expect(row.components(separatedBy: "aria-label=\"not allowed\"").count - 1 == 3)
    }

    @Test func pagesLoadOnlyLocalAssetsAndEscapeTheAPIURL() {
        for page in [Pages.Page.login, .app, .settings, .architecture] {
            let html = Pages.render(page, commandAPI: "http://127.0.0.1:8080/\"x")
            #expect(html.contains(#"<script src="/assets/app.js" defer></script>"#))
            #expect(!html.contains("http://cdn") && !html.contains("https://"))
            #expect(html.contains("http://127.0.0.1:8080/&quot;x"))
        }
        #expect(Pages.render(.app, commandAPI: "").contains(#"data-auth="required""#))
        #expect(!Pages.render(.login, commandAPI: "").contains(#"data-auth="required""#))
    }

    @Test func contentSecurityPolicyAllowsCommandAPIAndNoInlineScript() {
        let headers = UIRoutes.securityHeaders(commandAPI: "http://127.0.0.1:8080")
        let policy = headers[.contentSecurityPolicy] ?? ""
        #expect(policy.contains("script-src 'self';"))
        #expect(policy.contains("connect-src 'self' http://127.0.0.1:8080 http://localhost:8080;"))
        #expect(!policy.contains("unsafe-inline"))
    }

    @Test func assetsAreBundled() {
        #expect(Assets.all.map(\.name) == ["app.css", "app.js", "icon.svg"])
        #expect(Assets.all.allSatisfy { $0.bytes.readableBytes > 0 })
    }
}

@Suite("Search query")
struct SearchQueryTests {
    @Test func wordsAreLettersAndDigitsTheRestSeparates() {
        #expect(SearchQuery("Plan the LAUNCH!").words == ["Plan", "the", "LAUNCH"])
        #expect(SearchQuery("'x' | y:* & !(z)").words == ["x", "y", "z"])
        #expect(SearchQuery("Straße 3.5 Élan 東京").words == ["Straße", "3", "5", "Élan", "東京"])
        #expect(SearchQuery("  !!  ").isEmpty)
        #expect(SearchQuery((1...20).map { "w\($0)" }.joined(separator: " ")).words.count == SearchQuery.maxWords)
    }

    @Test func theLastWordIsAPrefix() {
        #expect(SearchQuery("plan la").tsquery == "'plan' & 'la':*")
        #expect(SearchQuery("plan").tsquery == "'plan':*")
    }

    @Test func theSnippetShowsWhereTheNotesMatch() {
        let notes = "Call them first.\n" + String(repeating: "filler ", count: 30) + "then plan the seating for 80 guests."
        let snippet = SearchResult.snippet(notes: notes, words: ["plan"])
        #expect(snippet.hasPrefix("…") && snippet.contains("plan the seating"))
        #expect(SearchResult.snippet(notes: "short note", words: ["none"]) == "short note")
        #expect(SearchResult.snippet(notes: "", words: ["x"]) == "")
    }
}
