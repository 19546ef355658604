import Foundation

/// Settings a folder's files do not fix and a caller chooses, as transformers' `from_pretrained` takes them.
public struct TokenizerOptions: Sendable {
    /// Whisper: the language code of the prefix ("en" → <|en|>); nil uses tokenizer_config.json's `language`.
    public var whisperLanguage: String?
    /// Whisper: the task of the prefix; nil uses tokenizer_config.json's `task`.
    public var whisperTask: WhisperTokenizer.Task?
    /// Whisper: whether timestamps are predicted (no <|notimestamps|> in the prefix); nil uses the config.
    public var whisperPredictsTimestamps: Bool?

    public init(whisperLanguage: String? = nil, whisperTask: WhisperTokenizer.Task? = nil,
                whisperPredictsTimestamps: Bool? = nil) {
        self.whisperLanguage = whisperLanguage
        self.whisperTask = whisperTask
        self.whisperPredictsTimestamps = whisperPredictsTimestamps
    }
}

/// Builds the tokenizer of a model folder, choosing the kind the way transformers does: by
/// tokenizer_config.json's `tokenizer_class`, with tokenizer.json as the description of the parts.
public enum TokenizerLoader {
    public static func load(folder: URL, options: TokenizerOptions = TokenizerOptions()) throws -> any Tokenizer {
        let config = try TokenizerConfig(folder: folder)
        let tokenizerJSON = folder.appendingPathComponent("tokenizer.json")
        let hasTokenizerJSON = FileManager.default.fileExists(atPath: tokenizerJSON.path)

        switch config.tokenizerClass {
        case "VitsTokenizer":
            return try VitsTokenizer(folder: folder)
        case "CLIPTokenizer":
            guard hasTokenizerJSON else { return try CLIPTokenizer(vocabAndMergesIn: folder) }
            return CLIPTokenizer(pipeline: try PipelineTokenizer(tokenizerJSON: tokenizerJSON))
        case "WhisperTokenizer":
            guard hasTokenizerJSON else { throw missingTokenizerJSON(folder, for: "Whisper") }
            return try whisper(PipelineTokenizer(tokenizerJSON: tokenizerJSON), config: config, options: options)
        default:
            guard hasTokenizerJSON else { throw missingTokenizerJSON(folder, for: config.tokenizerClass ?? "this model") }
            return try PipelineTokenizer(tokenizerJSON: tokenizerJSON)
        }
    }

    private static func whisper(_ pipeline: PipelineTokenizer, config: TokenizerConfig,
                                options: TokenizerOptions) throws -> WhisperTokenizer {
        let taskName = options.whisperTask?.rawValue ?? config.string("task")
        let task = try taskName.map { name -> WhisperTokenizer.Task in
            guard let task = WhisperTokenizer.Task(rawValue: name) else {
                throw TokenizerError.invalidOption("Whisper task \"\(name)\" is neither transcribe nor translate")
            }
            return task
        }
        return try WhisperTokenizer(pipeline: pipeline,
                                    language: options.whisperLanguage ?? config.string("language"),
                                    task: task,
                                    predictTimestamps: options.whisperPredictsTimestamps ?? config.bool("predict_timestamps") ?? false)
    }

    private static func missingTokenizerJSON(_ folder: URL, for kind: String) -> TokenizerError {
        .missingFile(path: folder.appendingPathComponent("tokenizer.json").path,
                     needed: "\(kind) tokenizers are read from tokenizer.json")
    }
}
