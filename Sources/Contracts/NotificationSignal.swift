import Foundation

/// The payload of a message on a user's notification subject (`UserSubject`, DESIGN §9): only
/// that the user's notifications changed; a streamer that hears it reads the unread count afresh.
/// The notifications themselves never travel on the bus.
public enum NotificationSignal {
    /// New notifications were written (the scheduler).
    public static let created = Data(#"{"change":"created"}"#.utf8)
    /// Some were marked read (command-api).
    public static let read = Data(#"{"change":"read"}"#.utf8)
}
