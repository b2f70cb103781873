/// Exponential backoff with a cap and full jitter, for retrying a failing dependency.
public struct Backoff: Sendable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(10)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The upper bound of the wait before attempt `attempt` (1-based): initial × 2^(attempt-1), capped.
    public func ceiling(attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let scaled = initial * (1 << exponent)
        return min(scaled, maximum)
    }

    /// A random wait in [ceiling/2, ceiling], so many retrying clients do not move in lockstep.
    public func delay(attempt: Int) -> Duration {
        let ceiling = ceiling(attempt: attempt)
        return ceiling / 2 + ceiling / 2 * Double.random(in: 0...1)
    }
}
