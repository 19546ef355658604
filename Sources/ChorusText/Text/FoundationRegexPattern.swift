import Foundation

/// Any other regex of a tokenizer.json, through ICU (NSRegularExpression). Slower than the hand-written
/// patterns and with ICU's reading of the syntax, which matches Oniguruma's for common patterns.
struct FoundationRegexPattern: TextPattern, @unchecked Sendable {
    private let regex: NSRegularExpression

    init(_ source: String) throws {
        do {
            regex = try NSRegularExpression(pattern: source)
        } catch {
            throw TokenizerError.unsupported("regex \(source) (\(error.localizedDescription))")
        }
    }

    func matches(in text: [Unicode.Scalar]) -> [Range<Int>] {
        let string = String(scalars: text)
        // NSRegularExpression reports UTF-16 offsets; map them back to scalar offsets.
        var scalarOffsetAtUTF16: [Int] = []
        scalarOffsetAtUTF16.reserveCapacity(text.count + 1)
        for (offset, scalar) in text.enumerated() {
            scalarOffsetAtUTF16.append(contentsOf: repeatElement(offset, count: UTF16.width(scalar)))
        }
        scalarOffsetAtUTF16.append(text.count)
        let whole = NSRange(location: 0, length: (string as NSString).length)
        return regex.matches(in: string, range: whole).compactMap { match in
            guard match.range.length > 0 else { return nil }
            return scalarOffsetAtUTF16[match.range.lowerBound]..<scalarOffsetAtUTF16[match.range.upperBound]
        }
    }
}
