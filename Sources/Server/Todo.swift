import ArgumentParser

/// One binary for every part of the system; the subcommand picks the part.

@main
struct Todo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "todo",
        abstract: "Realtime collaborative todo pipeline: command-api, domain-engine, data-sink, streamer, scheduler.",
        subcommands: [Migrate.self, CommandAPICommand.self, EnsureStreams.self, DomainEngineCommand.self, DataSinkCommand.self, RebuildProjectionCommand.self, DeadLetterCommand.self, StreamerCommand.self, SchedulerCommand.self, TokenKeysCommand.self]
    )
}
