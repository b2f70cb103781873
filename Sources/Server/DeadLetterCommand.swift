import ArgumentParser
import Contracts
import Foundation
import NATS
import ServiceSupport

/// `todo dlq list|show|replay|discard`: the dead letters of the pipeline (DESIGN §3,
/// docs/operations.md). Talks to NATS only (`NATS_URL`, or `--nats-url`).
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Inspect, replay or discard dead letters (the DLQ stream).",
        subcommands: [List.self, Show.self, Replay.self, Discard.self])

    struct Connection: ParsableArguments {
        @Option(help: "NATS URL (default: $NATS_URL or the local default).")
        var natsURL: String?

        /// Runs `body` with the DLQ of the configured NATS, and closes the connection after.
        func withAdmin(_ body: (DeadLetterAdmin) async throws -> Void) async throws {
            let shared = try SharedSettings(environment: ProcessInfo.processInfo.environment)
            var options = NATSConnection.Options(url: natsURL ?? shared.natsURL, name: "todo dlq")
            options.caFile = shared.natsCAFile
            let connection = try await NATSConnection.connect(options)
            do {
                try await body(DeadLetterAdmin(jetStream: connection.jetStream))
            } catch {
                await connection.drain()
                throw error
            }
            await connection.drain()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per dead letter, oldest first.")
        @OptionGroup var connection: Connection
        @Option(help: "Start at this DLQ sequence.") var from: UInt64 = 1
        @Option(help: "At most this many.") var limit: Int = 100

        func run() async throws {
            try await connection.withAdmin { admin in
                let letters = try await admin.list(from: from, limit: limit)
                print("\(try await admin.depth()) dead letter(s)\(letters.isEmpty ? "" : "; showing \(letters.count) from sequence \(from)")")
                for letter in letters {
                    let error = printable(letter.error)
                    print("\(letter.sequence)\t\(display(letter.storedAt))\t\(letter.originalStream)#\(letter.originalSequence)\t"
                          + "\(letter.originalSubject)\tdeliveries=\(letter.deliveryCount)\t\(error.count > 120 ? String(error.prefix(117)) + "…" : error)")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A dead letter's headers and payload.")
        @OptionGroup var connection: Connection
        @Argument(help: "Its DLQ sequence.") var sequence: UInt64

        func run() async throws {
            try await connection.withAdmin { admin in
                guard let letter = try await admin.letter(sequence) else { throw ValidationError("no dead letter at sequence \(sequence)") }
                print("sequence:          \(letter.sequence)")
                print("stored at:         \(display(letter.storedAt))")
                print("original subject:  \(letter.originalSubject)")
                print("original stream:   \(letter.originalStream) sequence \(letter.originalSequence)")
                print("deliveries:        \(letter.deliveryCount)")
                print("error:             \(printable(letter.error))")
                print("message id:        \(letter.messageID ?? "(none readable)")")
                print("payload (\(letter.payload.count) bytes):")
                print(printable(String(decoding: letter.payload, as: UTF8.self), keepLines: true))
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish dead letters again on their original subjects (idempotently: under their command or event id), then remove them.")
        @OptionGroup var connection: Connection
        @Argument(help: "DLQ sequences.") var sequences: [UInt64] = []
        @Flag(help: "Every dead letter.") var all = false
        @Flag(help: "Keep them in the DLQ after replaying.") var keep = false

        func validate() throws {
            if sequences.isEmpty != all { throw ValidationError("name the sequences to replay, or --all (not both)") }
        }

        func run() async throws {
            try await connection.withAdmin { admin in
                try await eachLetter(all ? nil : sequences, of: admin) { sequence in
                    "replayed onto \(try await admin.replay(sequence, keep: keep))"
                }
            }
        }
    }

    struct Discard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete dead letters for good.")
        @OptionGroup var connection: Connection
        @Argument(help: "DLQ sequences.") var sequences: [UInt64] = []
        @Flag(help: "Every dead letter.") var all = false

        func validate() throws {
            if sequences.isEmpty != all { throw ValidationError("name the sequences to discard, or --all (not both)") }
        }

        func run() async throws {
            try await connection.withAdmin { admin in
                try await eachLetter(all ? nil : sequences, of: admin) { sequence in
                    try await admin.discard(sequence)
                    return "discarded"
                }
            }
        }
    }
}

/// Runs `action` on each of `sequences` (nil: every letter), printing one line each; fails the
/// command at the end if any of them failed.
func eachLetter(_ sequences: [UInt64]?, of admin: DeadLetterAdmin, _ action: (UInt64) async throws -> String) async throws {
    let targets = if let sequences { sequences } else { try await admin.list(limit: Int.max).map(\.sequence) }
    var failed = 0
    for sequence in targets {
        do {
            print("\(sequence): \(try await action(sequence))")
        } catch {
            failed += 1
            print("\(sequence): \(error)")
        }
    }
    if failed > 0 { throw ExitCode.failure }
}

/// Text safe for a terminal: control characters (escape sequences included) shown as `\u{…}`.
func printable(_ text: String, keepLines: Bool = false) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        if (scalar.value < 0x20 && !(keepLines && (scalar == "\n" || scalar == "\t"))) || (0x7F...0x9F).contains(scalar.value) {
            out += "\\u{\(String(scalar.value, radix: 16))}"
        } else {
            out.unicodeScalars.append(scalar)
        }
    }
    return out
}

func display(_ date: Date) -> String { date.formatted(.iso8601) }
