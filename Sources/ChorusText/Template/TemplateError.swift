/// Why a chat template could not be parsed or rendered.
public struct TemplateError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The template text is not valid in the supported Jinja subset.
        case syntax
        /// The template is valid but failed on this context (a type error, a bad call).
        case render
        /// The template itself called `raise_exception(message)`, usually to reject a conversation shape.
        case raised
    }

    public let kind: Kind
    /// The template's own text for `.raised`, otherwise what went wrong.
    public let message: String
    /// 1-based position of the tag or token at fault; 0 while not yet known.
    public internal(set) var line: Int
    public internal(set) var column: Int

    init(_ kind: Kind, _ message: String, line: Int = 0, column: Int = 0) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    static func render(_ message: String) -> TemplateError { TemplateError(.render, message) }

    /// A raised message is meant for whoever sent the conversation, so it is passed on untouched.
    public var description: String {
        if kind == .raised { return message }
        return "chat template line \(line), column \(column): \(message)"
    }
}
