/// Turns tokens back into text (tokenizers' `decoder`). Each step maps the list of token strings to a
/// new list, as tokenizers' `decode_chain` does; the final text is their concatenation.
protocol TokenDecoder: Sendable {
    func decode(_ tokens: [String]) -> [String]
}

enum TokenDecoders {
    /// The decoder a tokenizer.json `decoder` entry describes, or nil for `null`.
    static func make(_ json: JSON) throws -> TokenDecoder? {
        guard !json.isNull else { return nil }
        switch json["type"].string {
        case "Sequence":
            return TokenDecoderSequence(steps: try (json["decoders"].array ?? []).compactMap(make))
        case "ByteLevel":
            return ByteLevelDecoder()
        case "Replace":
            return ReplaceDecoder(pattern: try TextPatterns.make(json["pattern"]), content: json["content"].string ?? "")
        case "ByteFallback":
            return ByteFallbackDecoder()
        case "Fuse":
            return FuseDecoder()
        case "Strip":
            guard let content = json["content"].string?.unicodeScalars.first else {
                throw TokenizerError.unsupported("Strip decoder without content")
            }
            return StripDecoder(content: content, start: json["start"].int ?? 0, stop: json["stop"].int ?? 0)
        case "Metaspace":
            let replacement = json["replacement"].string?.unicodeScalars.first ?? "▁"
            let prepends = json["prepend_scheme"].string.map { $0 != "never" } ?? (json["add_prefix_space"].bool ?? true)
            return MetaspaceDecoder(replacement: replacement, dropsLeadingSpace: prepends)
        case let other:
            throw TokenizerError.unsupported("decoder type \(other ?? "missing")")
        }
    }
}

struct TokenDecoderSequence: TokenDecoder {
    let steps: [TokenDecoder]

    func decode(_ tokens: [String]) -> [String] {
        steps.reduce(tokens) { tokens, step in step.decode(tokens) }
    }
}

/// Byte-level alphabet back to bytes, then UTF-8 with invalid sequences replaced by U+FFFD.
struct ByteLevelDecoder: TokenDecoder {
    func decode(_ tokens: [String]) -> [String] {
        let bytes = tokens.flatMap { token in ByteLevelAlphabet.bytes(of: token) ?? Array(token.utf8) }
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

struct ReplaceDecoder: TokenDecoder {
    let pattern: TextPattern
    let content: String

    func decode(_ tokens: [String]) -> [String] {
        tokens.map { pattern.replacingMatches(in: $0, with: content) }
    }
}

/// Runs of "<0xNN>" tokens become the text their bytes spell, or one U+FFFD per byte if they are not
/// valid UTF-8.
struct ByteFallbackDecoder: TokenDecoder {
    func decode(_ tokens: [String]) -> [String] {
        var result: [String] = []
        var pendingBytes: [UInt8] = []
        func flushBytes() {
            guard !pendingBytes.isEmpty else { return }
            if let text = String(validating: pendingBytes, as: UTF8.self) {
                result.append(text)
            } else {
                result.append(contentsOf: repeatElement("\u{FFFD}", count: pendingBytes.count))
            }
            pendingBytes.removeAll()
        }
        for token in tokens {
            if let byte = ByteFallbackToken.byte(of: token) {
                pendingBytes.append(byte)
            } else {
                flushBytes()
                result.append(token)
            }
        }
        flushBytes()
        return result
    }
}

struct FuseDecoder: TokenDecoder {
    func decode(_ tokens: [String]) -> [String] { [tokens.joined()] }
}

/// Removes up to `start` leading and `stop` trailing `content` characters from every token.
struct StripDecoder: TokenDecoder {
    let content: Unicode.Scalar
    let start: Int
    let stop: Int

    func decode(_ tokens: [String]) -> [String] {
        tokens.map { token in
            let scalars = Array(token.unicodeScalars)
            let leading = scalars.prefix(start).prefix(while: { $0 == content }).count
            let trailing = scalars.dropFirst(leading).reversed().prefix(stop).prefix(while: { $0 == content }).count
            return String(scalars: scalars[leading..<(scalars.count - trailing)])
        }
    }
}

/// "▁" back to spaces, dropping the one the pre-tokenizer put before the first word.
struct MetaspaceDecoder: TokenDecoder {
    let replacement: Unicode.Scalar
    let dropsLeadingSpace: Bool

    func decode(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { index, token in
            String(scalars: token.unicodeScalars.compactMap { scalar -> Unicode.Scalar? in
                guard scalar == replacement else { return scalar }
                return index == 0 && dropsLeadingSpace ? nil : " "
            })
        }
    }
}
