import Foundation

/// The character vocabulary of VITS / MMS-TTS (transformers' `VitsTokenizer`): one id per character,
/// characters outside the vocabulary dropped after lowercasing, and with `add_blank` the blank id
/// between every two characters and at both ends.
public struct VitsTokenizer: Tokenizer {
    private let vocabulary: Vocabulary
    /// The vocabulary's characters, which normalisation keeps as they are.
    private let vocabularyScalars: Set<Unicode.Scalar>
    private let addedVocabulary: AddedVocabulary
    /// Multi-character entries (added tokens such as "<unk>") that normalisation also keeps verbatim.
    private let verbatimEntries: [[Unicode.Scalar]]
    private let specialIDs: Set<Int>
    private let blankID: Int
    private let unknownID: Int?
    private let addsBlanks: Bool
    private let normalizes: Bool
    private let language: String?
    /// `is_uroman`: the model was trained on text romanized by uroman. transformers romanizes only when
    /// the uroman package is installed and otherwise passes the text on unchanged, as ChorusText always
    /// does, so callers should romanize non-Latin input themselves.
    public let expectsRomanizedInput: Bool

    /// Reads vocab.json and tokenizer_config.json of an MMS-TTS folder.
    public init(folder: URL) throws {
        let config = try TokenizerConfig(folder: folder)
        if config.bool("phonemize") ?? true {
            throw TokenizerError.unsupported("\(config.path) asks for phonemize (espeak phonemes), which ChorusText does not run")
        }
        let vocabURL = folder.appendingPathComponent("vocab.json")
        let vocabulary = try Vocabulary(json: JSON.load(vocabURL), path: vocabURL.path)
        self.vocabulary = vocabulary
        addsBlanks = config.bool("add_blank") ?? true
        normalizes = config.bool("normalize") ?? true
        language = config.string("language")
        expectsRomanizedInput = config.bool("is_uroman") ?? false

        var added = config.addedTokens
        let specialNames = ["pad_token", "unk_token"].compactMap(config.specialToken)
        for name in specialNames where !added.contains(where: { $0.content == name }) {
            if let id = vocabulary.id(name) { added.append(AddedToken(id: id, content: name, isSpecial: true)) }
        }
        let addedVocabulary = AddedVocabulary(added, normalizer: nil)
        self.addedVocabulary = addedVocabulary
        specialIDs = Set(added.filter { $0.isSpecial || specialNames.contains($0.content) }.map(\.id))
        unknownID = config.specialToken("unk_token").flatMap { addedVocabulary.id($0) ?? vocabulary.id($0) }

        let vocabularyEntries = vocabulary.tokens.map { Array($0.unicodeScalars) }
        vocabularyScalars = Set(vocabularyEntries.filter { $0.count == 1 }.map { $0[0] })
        verbatimEntries = (vocabularyEntries + added.map { Array($0.content.unicodeScalars) })
            .filter { $0.count > 1 }
            .sorted { $0.count > $1.count }
        // transformers interleaves the token of id 0, whatever the pad token is.
        blankID = 0
    }

    public func encode(_ text: String) -> [Int] {
        var ids: [Int] = []
        for segment in addedVocabulary.splitRaw(prepared(text)) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let piece):
                ids.append(contentsOf: interleaved(piece.text.unicodeScalars.compactMap(id(of:))))
            }
        }
        return ids
    }

    /// With blanks, the characters sit at the odd positions; transformers takes those whatever they
    /// are, so skipping special tokens (the blank among them) garbles the text, as it does there.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        let tokens = ids.filter { !(skipSpecialTokens && specialIDs.contains($0)) }.compactMap(token)
        let characters = addsBlanks && tokens.count > 1
            ? tokens.enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
            : tokens
        return characters.joined()
    }

    public func tokenID(_ token: String) -> Int? {
        addedVocabulary.id(token) ?? vocabulary.id(token)
    }

    public func token(_ id: Int) -> String? {
        addedVocabulary.spelling(id) ?? vocabulary.token(id)
    }

    /// transformers' `prepare_for_tokenization`: lowercase what the vocabulary does not hold as is,
    /// apply the language's character fixes, then keep only vocabulary characters and strip the ends.
    private func prepared(_ text: String) -> String {
        guard normalizes else { return romanianFixed(text) }
        let lowered = romanianFixed(lowercasedOutsideVocabulary(text))
        let kept = Array(lowered.unicodeScalars.filter(vocabularyScalars.contains))
        return String(scalars: kept.trimmed(where: \.isPythonWhitespace))
    }

    /// transformers' `normalize_text`: vocabulary entries found in the text are kept verbatim, everything
    /// else is lowercased one character at a time.
    private func lowercasedOutsideVocabulary(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var result = String.UnicodeScalarView()
        var index = 0
        while index < scalars.count {
            if let entry = verbatimEntries.first(where: { scalars.hasLiteral($0, at: index) }) {
                result.append(contentsOf: entry)
                index += entry.count
            } else if vocabularyScalars.contains(scalars[index]) {
                result.append(scalars[index])
                index += 1
            } else {
                result.append(contentsOf: scalars[index].properties.lowercaseMapping.unicodeScalars)
                index += 1
            }
        }
        return String(result)
    }

    private func romanianFixed(_ text: String) -> String {
        guard language == "ron" else { return text }
        return LiteralPattern("ț").replacingMatches(in: text, with: "ţ")
    }

    private func id(of character: Unicode.Scalar) -> Int? {
        addedVocabulary.id(String(character)) ?? vocabulary.id(String(character)) ?? unknownID
    }

    private func interleaved(_ characterIDs: [Int]) -> [Int] {
        guard addsBlanks else { return characterIDs }
        var ids = [blankID]
        for id in characterIDs { ids.append(contentsOf: [id, blankID]) }
        return ids
    }
}
