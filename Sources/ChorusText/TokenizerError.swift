/// Why a tokenizer could not be built; every case names the file or setting a person has to look at.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A file the folder's tokenizer needs is missing.
    case missingFile(path: String, needed: String)
    /// A file is there but does not hold what its format promises.
    case invalidFile(path: String, reason: String)
    /// The files ask for a component or option this module does not implement.
    case unsupported(String)
    /// An option passed by the caller does not fit this tokenizer.
    case invalidOption(String)

    public var description: String {
        switch self {
        case let .missingFile(path, needed):
            return "\(path) is missing: \(needed)"
        case let .invalidFile(path, reason):
            return "\(path) cannot be read as a tokenizer file: \(reason)"
        case let .unsupported(what):
            return "unsupported tokenizer feature: \(what)"
        case let .invalidOption(what):
            return "invalid tokenizer option: \(what)"
        }
    }
}
