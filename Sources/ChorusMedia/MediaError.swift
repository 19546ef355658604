/// What went wrong with a piece of media, in words a caller can act on.
public enum MediaError: Error, Equatable, CustomStringConvertible {
    case corrupt(String)
    case unsupported(String)
    case tooLarge(String)

    public var description: String {
        switch self {
        case .corrupt(let message), .unsupported(let message), .tooLarge(let message): return message
        }
    }
}
