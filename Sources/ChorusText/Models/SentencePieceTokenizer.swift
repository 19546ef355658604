import Foundation

/// A SentencePiece BPE vocabulary with scores (what GGUF files carry for Gemma and Llama 2), tokenized as
/// llama.cpp's `llm_tokenizer_spm` does: spaces become "▁", the text starts as one symbol per character,
/// the adjacent pair whose joined piece has the highest score is merged (leftmost first on ties) until
/// none joins into a piece, and a symbol with no piece of its own falls back to its parts and then to
/// its bytes ("<0x41>"). Control and user-defined tokens written in the text are matched first.
public struct SentencePieceTokenizer: Tokenizer, SpecialTokenParsing {
    public enum TokenType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    let pieces: [String]
    let scores: [Float]
    let types: [TokenType]
    /// By UTF-8 bytes: Swift's String equality is canonical ("e\u{301}" == "é"), a vocabulary's is not.
    let ids: [[UInt8]: Int]
    let byteIDs: [Int?]
    let unknownID: Int?
    let addsSpacePrefix: Bool
    /// Control and user-defined tokens, longest first (so "<start_of_turn>" wins over a shorter prefix).
    let specials: [(text: String, id: Int, isControl: Bool)]

    public init(pieces: [String], scores: [Float], types: [Int], addSpacePrefix: Bool, unknownID: Int?) throws {
        guard !pieces.isEmpty, scores.count == pieces.count else {
            throw TokenizerError.invalidFile(path: "gguf", reason: "\(pieces.count) pieces and \(scores.count) scores")
        }
        self.pieces = pieces
        self.scores = scores
        let resolved = pieces.indices.map { $0 < types.count ? TokenType(rawValue: types[$0]) ?? .normal : .normal }
        self.types = resolved
        var ids: [[UInt8]: Int] = [:]
        for (id, piece) in pieces.enumerated() where ids[Array(piece.utf8)] == nil { ids[Array(piece.utf8)] = id }
        self.ids = ids
        byteIDs = (0..<256).map { ids[Array(String(format: "<0x%02X>", $0).utf8)] }
        self.unknownID = unknownID
        addsSpacePrefix = addSpacePrefix
        specials = pieces.enumerated().filter { [.control, .userDefined].contains(resolved[$0.offset]) && !$0.element.isEmpty }
            .map { ($0.element, $0.offset, resolved[$0.offset] == .control) }.sorted { $0.text.utf8.count > $1.text.utf8.count }
    }

    public func encode(_ text: String) -> [Int] { encode(text, parseSpecial: true) }

    /// `parseSpecial`: control tokens written in the text become those tokens (as llama.cpp's `special`);
    /// user-defined tokens (Gemma's runs of spaces and newlines) are cut out either way, as llama.cpp does.
    public func encode(_ text: String, parseSpecial: Bool) -> [Int] {
        var out: [Int] = []
        var pending = Substring(text)
        var first = true
        while !pending.isEmpty {
            var cut: (range: Range<Substring.Index>, id: Int)?
            for (special, id, isControl) in specials where parseSpecial || !isControl {
                if let range = pending.range(of: special, options: .literal), range.lowerBound < (cut?.range.lowerBound ?? pending.endIndex) { cut = (range, id) }
            }
            let plain = cut.map { pending[..<$0.range.lowerBound] } ?? pending
            if !plain.isEmpty {
                out += encodePlain(String(plain), first: first)
            }
            guard let cut else { break }
            out.append(cut.id)
            pending = pending[cut.range.upperBound...]
            first = false
        }
        return out
    }

    struct Symbol {
        var start: Int
        var length: Int
        var previous: Int
        var next: Int
    }

    struct Bigram: Comparable {
        var left: Int
        var right: Int
        var score: Float
        var size: Int
        /// Higher score first, then the leftmost.
        static func < (a: Bigram, b: Bigram) -> Bool { a.score < b.score || (a.score == b.score && a.left > b.left) }
    }

    func encodePlain(_ raw: String, first: Bool) -> [Int] {
        let text = ((addsSpacePrefix && first ? " " : "") + raw).replacingOccurrences(of: " ", with: "\u{2581}")
        let bytes = Array(text.utf8)
        var symbols: [Symbol] = []
        var offset = 0
        for character in text.unicodeScalars {
            let length = String(character).utf8.count
            symbols.append(Symbol(start: offset, length: length, previous: symbols.count - 1, next: symbols.count + 1))
            offset += length
        }
        guard !symbols.isEmpty else { return [] }
        symbols[symbols.count - 1].next = -1
        var heap = Heap<Bigram>()
        var merges: [[UInt8]: (Int, Int)] = [:]
        func piece(_ start: Int, _ length: Int) -> [UInt8] { Array(bytes[start..<(start + length)]) }
        func addBigram(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let text = piece(symbols[left].start, symbols[left].length + symbols[right].length)
            guard let id = ids[text] else { return }
            heap.push(Bigram(left: left, right: right, score: scores[id], size: text.count))
            merges[text] = (left, right)
        }
        for i in 1..<symbols.count { addBigram(i - 1, i) }
        while let bigram = heap.pop() {
            let left = symbols[bigram.left], right = symbols[bigram.right]
            guard left.length > 0, right.length > 0, left.length + right.length == bigram.size else { continue }
            symbols[bigram.left].length += right.length
            symbols[bigram.right].length = 0
            symbols[bigram.left].next = right.next
            if right.next >= 0 { symbols[right.next].previous = bigram.left }
            addBigram(symbols[bigram.left].previous, bigram.left)
            addBigram(bigram.left, symbols[bigram.left].next)
        }
        var out: [Int] = []
        func resegment(_ start: Int, _ length: Int) {
            let text = piece(start, length)
            if let id = ids[text] {
                out.append(id)
                return
            }
            if let (left, right) = merges[text] {
                resegment(symbols[left].start, symbols[left].length)
                resegment(symbols[right].start, symbols[right].length)
                return
            }
            for byte in bytes[start..<(start + length)] {
                if let id = byteIDs[Int(truncatingIfNeeded: byte)] ?? unknownID { out.append(id) }
            }
        }
        var i = 0
        while i >= 0 && i < symbols.count {
            if symbols[i].length > 0 { resegment(symbols[i].start, symbols[i].length) }
            i = symbols[i].next
        }
        return out
    }

    public func decode(_ ids: [Int], skipSpecialTokens: Bool) -> String {
        var bytes: [UInt8] = []
        for id in ids where (0..<pieces.count).contains(id) {
            switch types[id] {
            case .byte:
                if let value = UInt8(pieces[id].dropFirst(3).dropLast(), radix: 16) { bytes.append(value) }  // checked: a failable parse
            case .control, .unknown, .unused:
                if !skipSpecialTokens { bytes += Array(pieces[id].utf8) }
            default:
                bytes += Array(pieces[id].replacingOccurrences(of: "\u{2581}", with: " ").utf8)
            }
        }
        var text = String(decoding: bytes, as: UTF8.self)
        if addsSpacePrefix, text.hasPrefix(" ") { text.removeFirst() }
        return text
    }

    public func tokenID(_ token: String) -> Int? { ids[Array(token.utf8)] }

    public func token(_ id: Int) -> String? { (0..<pieces.count).contains(id) ? pieces[id] : nil }
}

/// A binary max-heap.
struct Heap<Element: Comparable> {
    private var items: [Element] = []

    mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[parent] < items[child] else { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var largest = parent
            if left < items.count && items[largest] < items[left] { largest = left }
            if right < items.count && items[largest] < items[right] { largest = right }
            guard largest != parent else { break }
            items.swapAt(parent, largest)
            parent = largest
        }
        return top
    }
}
