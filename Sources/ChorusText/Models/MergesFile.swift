import Foundation

/// merges.txt as OpenAI and Hugging Face ship it: an optional "#version" line, then one "left right"
/// pair per line in rank order.
enum MergesFile {
    static func pairs(at url: URL) throws -> [(String, String)] {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            throw TokenizerError.missingFile(path: url.path, needed: "the BPE merges")
        }
        var pairs: [(String, String)] = []
        // Split on scalars: as Characters, "\r\n" is one grapheme and would never equal "\n".
        for (number, line) in text.unicodeScalars.split(separator: "\n").enumerated() {
            let trimmed = String(scalars: line.last == "\r" ? line.dropLast() : line)
            if number == 0 && trimmed.hasPrefix("#version") { continue }
            guard let pair = MergeTable.pair(fromLine: trimmed) else {
                throw TokenizerError.invalidFile(path: url.path, reason: "line \(number + 1) \"\(trimmed)\" is not \"left right\"")
            }
            pairs.append(pair)
        }
        return pairs
    }
}
