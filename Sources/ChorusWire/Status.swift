import ChorusInput

/// gRPC's status codes, with the same numbers, so people and tools that know gRPC read ours at a glance.
public enum StatusCode: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case ok = 0
    case cancelled = 1
    case unknown = 2
    case invalidArgument = 3
    case deadlineExceeded = 4
    case notFound = 5
    case alreadyExists = 6
    case permissionDenied = 7
    case resourceExhausted = 8
    case failedPrecondition = 9
    case aborted = 10
    case outOfRange = 11
    case unimplemented = 12
    case `internal` = 13
    case unavailable = 14
    case dataLoss = 15
    case unauthenticated = 16

    public var description: String {
        switch self {
        case .ok: return "OK"
        case .cancelled: return "CANCELLED"
        case .unknown: return "UNKNOWN"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .deadlineExceeded: return "DEADLINE_EXCEEDED"
        case .notFound: return "NOT_FOUND"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .permissionDenied: return "PERMISSION_DENIED"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .failedPrecondition: return "FAILED_PRECONDITION"
        case .aborted: return "ABORTED"
        case .outOfRange: return "OUT_OF_RANGE"
        case .unimplemented: return "UNIMPLEMENTED"
        case .internal: return "INTERNAL"
        case .unavailable: return "UNAVAILABLE"
        case .dataLoss: return "DATA_LOSS"
        case .unauthenticated: return "UNAUTHENTICATED"
        }
    }

    /// Unknown numbers from a peer become UNKNOWN rather than failing the call a second time.
    public init(wireValue: UInt32) {
        self = StatusCode(rawValue: wireValue) ?? .unknown
    }
}

/// The error every call fails with: a status code and a message a person can act on.
public struct WireStatus: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: StatusCode
    public var message: String

    public init(_ code: StatusCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// Maps any error a handler throws to the status the caller sees.
    public static func from(_ error: Error) -> WireStatus {
        switch error {
        case let status as WireStatus: return status
        case is CancellationError: return WireStatus(.cancelled, "the call was cancelled")
        case let convertible as WireStatusConvertible: return convertible.wireStatus
        case let invalid as InvalidField: return WireStatus(.invalidArgument, invalid.message)
        default: return WireStatus(.internal, String(describing: error))
        }
    }
}

/// Errors of lower layers (media decoding, model loading) say which status they mean.
public protocol WireStatusConvertible: Error {
    var wireStatus: WireStatus { get }
}
