/// Whisper's special tokens by role, read from its tokenizer by name (ids differ between English-only
/// and multilingual vocabularies), and the decoder prompt openai-whisper builds from them.
public struct WhisperTokens: Sendable {
    public let startOfTranscript: Int
    public let endOfText: Int
    public let transcribe: Int?
    public let translate: Int?
    public let noTimestamps: Int
    /// <|startofprev|>: what follows it, up to <|startoftranscript|>, is context (a prompt, earlier text).
    public let startOfPrevious: Int?
    /// <|nospeech|> (<|nocaptions|> in older vocabularies), whose probability says the window is silent.
    public let noSpeech: Int?
    /// <|0.00|>; the timestamp token for t seconds is timestampBegin + round(t / 0.02). Tokenizer files
    /// often omit the timestamp tokens; they follow <|notimestamps|>, as in openai-whisper.
    public let timestampBegin: Int
    /// "en" → <|en|> id, for every language token the vocabulary has.
    public let languages: [String: Int]

    public init(_ tokenizer: Tokenizer, languageCodes: [String] = WhisperTokens.languageCodes) throws {
        func required(_ name: String) throws -> Int {
            guard let id = tokenizer.tokenID(name) else { throw TokenizerError.invalidOption("not a Whisper tokenizer: it has no \(name)") }
            return id
        }
        startOfTranscript = try required("<|startoftranscript|>")
        endOfText = try required("<|endoftext|>")
        noTimestamps = try required("<|notimestamps|>")
        noSpeech = tokenizer.tokenID("<|nospeech|>") ?? tokenizer.tokenID("<|nocaptions|>")
        startOfPrevious = tokenizer.tokenID("<|startofprev|>")
        transcribe = tokenizer.tokenID("<|transcribe|>")
        translate = tokenizer.tokenID("<|translate|>")
        timestampBegin = tokenizer.tokenID("<|0.00|>") ?? noTimestamps + 1
        languages = Dictionary(uniqueKeysWithValues: languageCodes.compactMap { code in tokenizer.tokenID("<|\(code)|>").map { (code, $0) } })
    }

    /// <|startoftranscript|> [<|language|> <|task|>] [<|notimestamps|>]
    public func prompt(language: String?, task: WhisperTask = .transcribe, timestamps: Bool) -> [Int] {
        var ids = [startOfTranscript]
        if let language, let id = languages[language] {
            ids.append(id)
            if let taskID = task == .translate ? translate : transcribe { ids.append(taskID) }
        }
        if !timestamps { ids.append(noTimestamps) }
        return ids
    }

    /// Whisper's language codes in its vocabulary order.
    public static let languageCodes = ["en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"]
}

/// What Whisper is asked to do with speech: write it down in its own language, or in English.
public enum WhisperTask: String, Sendable {
    case transcribe
    case translate
}
