import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Pipeline steps served by something other than a service behind the router: the HTTP front registers its
/// upstream models here ("upstream.chat" …), so a recipe or a caller's steps can mix local and upstream models.
/// A step takes its request as JSON and answers JSON, as a service step's output is.
public final class ExternalSteps: Sendable {
    public typealias Step = @Sendable (_ request: Data, _ deadline: NIODeadline?) async throws -> Data
    private let steps = NIOLockedValueBox<[String: Step]>([:])

    public init() {}

    public func register(_ name: String, _ step: @escaping Step) {
        steps.withLockedValue { $0[name] = step }
    }

    func step(_ name: String) -> Step? { steps.withLockedValue { $0[name] } }

    var names: [String] { steps.withLockedValue { $0.keys.sorted() } }
}
