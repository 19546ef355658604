/// Polls `condition` every `pollInterval` until it holds or `timeout` has passed; true when it held.
/// For tests that wait for something another thread, task or process does: the wait ends as soon as
/// the condition holds, and the deadline is generous, so a loaded machine makes the test slower, not red.
/// The condition is checked once more after the deadline, so a task starved past it still sees the state.
public func eventually(timeout: Duration = .seconds(10), pollInterval: Duration = .milliseconds(10),
                       _ condition: () async throws -> Bool) async rethrows -> Bool {
    let clock = ContinuousClock()
    let giveUp = clock.now.advanced(by: timeout)
    while true {
        if try await condition() { return true }
        if clock.now >= giveUp || Task.isCancelled { return false }
        try? await Task.sleep(for: pollInterval)
    }
}
