import Testing
@testable import Contracts

/// The whole RBAC matrix of DESIGN §5: every role and a non-member against every capability.
@Suite("RBAC matrix")
struct GroupPolicyTests {
    typealias Row = (capability: GroupCapability, owner: Bool, admin: Bool, member: Bool, nonMember: Bool)

    static let matrix: [Row] = [
        (.createGroup, true, true, true, true),
        (.addMember(as: .member), true, true, false, false),
        (.addMember(as: .admin), true, false, false, false),
        (.addMember(as: .owner), true, false, false, false),
        (.changeRoles, true, false, false, false),
        (.removeMember(target: .member, isSelf: false), true, true, false, false),
        (.removeMember(target: .admin, isSelf: false), true, false, false, false),
        (.removeMember(target: .owner, isSelf: false), true, false, false, false),
        (.deleteGroup, true, false, false, false),
        (.writeOwnTodo, true, true, true, false),
        (.writeOthersTodo, true, true, false, false),
        (.moveTodoAssignedToSelf, true, true, true, false),
        (.read, true, true, true, false),
        (.exportGroup, true, true, false, false),
    ]

    @Test(arguments: 0..<matrix.count)
    func capability(_ index: Int) {
        let row = Self.matrix[index]
        #expect(GroupPolicy.allows(.owner, row.capability) == row.owner, "owner: \(row.capability)")
        #expect(GroupPolicy.allows(.admin, row.capability) == row.admin, "admin: \(row.capability)")
        #expect(GroupPolicy.allows(.member, row.capability) == row.member, "member: \(row.capability)")
        #expect(GroupPolicy.allows(nil, row.capability) == row.nonMember, "non-member: \(row.capability)")
    }

    /// Anyone may remove themself (leave); only a member's own membership, never a non-member's.
    @Test func leavingIsAllowedForEveryRole() {
        for role in GroupRole.allCases {
            #expect(GroupPolicy.allows(role, .removeMember(target: role, isSelf: true)))
        }
        #expect(!GroupPolicy.allows(nil, .removeMember(target: .member, isSelf: true)))
    }
}

@Suite("Shared HTTP settings")
struct SharedHTTPSettingsTests {
    @Test func uiOriginAndProductionFlag() {
        #expect([String: String]().uiOrigin == "http://localhost:8081")
        #expect(["UI_ORIGIN": "https://todo.example"].uiOrigin == "https://todo.example")
        #expect(["APP_ENV": "production"].isProduction && ![String: String]().isProduction)
    }
}
