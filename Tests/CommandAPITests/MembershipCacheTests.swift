import Foundation
import HTTPAPI
import Synchronization
import Testing
@testable import CommandAPI

@Suite("Membership cache: remembered answers, forgotten on change")
struct MembershipCacheTests {
    let ann = UUID(), bob = UUID()

    @Test func positiveAnswersAreRememberedUntilTheyExpire() {
        let cache = MembershipCache(ttl: .seconds(10))
        let epoch = cache.lookup(user: ann, group: "g", now: 100).epoch
        cache.remember(.member(.owner), user: ann, group: "g", asOf: epoch, now: 100)
        #expect(cache.lookup(user: ann, group: "g", now: 109.9).check == .member(.owner))
        #expect(cache.lookup(user: ann, group: "g", now: 110.1).check == nil, "expired")
        #expect(cache.lookup(user: bob, group: "g", now: 101).check == nil, "another user")
        #expect(cache.lookup(user: ann, group: "h", now: 101).check == nil, "another group")
    }

    @Test func refusalsAreNeverRemembered() {
        let cache = MembershipCache(ttl: .seconds(10))
        cache.remember(.notMember, user: ann, group: "g", asOf: 0, now: 100)
        cache.remember(.unknownGroup, user: ann, group: "h", asOf: 0, now: 100)
        #expect(cache.count == 0)
        #expect(cache.lookup(user: ann, group: "g", now: 101).check == nil)
    }

    @Test func forgettingAGroupForgetsOnlyThatGroup() {
        let cache = MembershipCache(ttl: .seconds(10))
        for (user, group) in [(ann, "g"), (bob, "g"), (ann, "h")] {
            cache.remember(.member(.member), user: user, group: group, asOf: cache.lookup(user: user, group: group, now: 0).epoch, now: 0)
        }
        #expect(cache.count == 3)
        cache.forget(group: "g")
        #expect(cache.lookup(user: ann, group: "g", now: 1).check == nil)
        #expect(cache.lookup(user: bob, group: "g", now: 1).check == nil)
        #expect(cache.lookup(user: ann, group: "h", now: 1).check == .member(.member))
        #expect(cache.count == 1)
    }

    /// A check that read Postgres before a change, and finishes after the change was forgotten,
    /// must not put the old answer back.
    @Test func anAnswerReadBeforeAChangeIsNotRememberedAfterIt() {
        let cache = MembershipCache(ttl: .seconds(10))
        let epoch = cache.lookup(user: ann, group: "g", now: 0).epoch
        cache.forget(group: "g") // ann removed while her check was reading
        cache.remember(.member(.member), user: ann, group: "g", asOf: epoch, now: 0)
        #expect(cache.lookup(user: ann, group: "g", now: 1).check == nil)
    }

    @Test func theCacheStartsOverPastItsCapacity() {
        let cache = MembershipCache(ttl: .seconds(10), capacity: 3)
        for index in 0..<3 { cache.remember(.member(.member), user: ann, group: "g\(index)", asOf: 0, now: 0) }
        #expect(cache.count == 3)
        cache.remember(.member(.member), user: ann, group: "g3", asOf: 0, now: 0)
        #expect(cache.count == 1)
        #expect(cache.lookup(user: ann, group: "g3", now: 1).check == .member(.member))
    }

    @Test func theIntakeStoreAsksPostgresOncePerRememberedAnswer() async throws {
        let base = CountingIntakeStore()
        let user = AuthenticatedUser(userID: ann, username: "ann", sessionID: UUID())
        base.store.add(user, to: "g", as: .admin)
        let cache = MembershipCache(ttl: .seconds(60))
        let store = CachedCommandIntakeStore(base: base, cache: cache)
        #expect(try await store.membership(of: ann, in: "g") == .member(.admin))
        #expect(try await store.membership(of: ann, in: "g") == .member(.admin))
        #expect(base.checks.withLock { $0 } == 1)
        base.store.roles.withLock { $0["g"]?[ann] = nil } // removed
        cache.forget(group: "g")
        #expect(try await store.membership(of: ann, in: "g") == .notMember)
        #expect(try await store.membership(of: ann, in: "g") == .notMember)
        #expect(base.checks.withLock { $0 } == 3, "refusals are asked every time")
    }
}

/// The in-memory store, counting membership checks.
final class CountingIntakeStore: CommandIntakeStore {
    let store = InMemoryIntakeStore()
    let checks = Mutex(0)

    func membership(of user: UUID, in group: String) async throws -> MembershipCheck {
        checks.withLock { $0 += 1 }
        return try await store.membership(of: user, in: group)
    }

    func isMember(username: String, of group: String) async throws -> Bool { try await store.isMember(username: username, of: group) }
    func liveTodoCount(in group: String, upTo limit: Int) async throws -> Int { try await store.liveTodoCount(in: group, upTo: limit) }
    func idempotentResult(user: UUID, key: String) async throws -> IdempotentResult? { try await store.idempotentResult(user: user, key: key) }
    func storeIdempotentResult(user: UUID, key: String, result: IdempotentResult) async throws {
        try await store.storeIdempotentResult(user: user, key: key, result: result)
    }
    func outcome(commandID: String) async throws -> CommandOutcome? { nil }
    func timezone(of user: UUID) async throws -> String { "Europe/Berlin" }
}

@Suite("Which groups are far below their todos cap")
struct TodoCountCacheTests {
    @Test func aGroupSeenFarBelowIsNotCountedAgainWithinTheTTL() {
        let cache = TodoCountCache(ttl: .seconds(10), capacity: 2)
        let start = ContinuousClock.now
        #expect(!cache.isFarBelow("g1", now: start))
        cache.rememberFarBelow("g1", now: start)
        #expect(cache.isFarBelow("g1", now: start + .seconds(9)))
        #expect(!cache.isFarBelow("g1", now: start + .seconds(10)))
        // Bounded: past its capacity it starts over.
        cache.rememberFarBelow("g1", now: start)
        cache.rememberFarBelow("g2", now: start)
        cache.rememberFarBelow("g3", now: start)
        #expect(!cache.isFarBelow("g1", now: start))
        #expect(cache.isFarBelow("g3", now: start))
    }
}
