import ChorusText

/// Turns generated ids into text pieces as they arrive. The whole completion is decoded each time and
/// only what is new is released: a character split over byte-fallback tokens waits until it is whole
/// (no U+FFFD mid-stream), and text that could be the start of a stop string waits until it is not.
struct TextStream {
    let tokenizer: any Tokenizer
    let stops: [String]
    private(set) var ids: [Int] = []
    /// The text released so far.
    private(set) var released = ""

    init(tokenizer: any Tokenizer, stops: [String]) {
        self.tokenizer = tokenizer
        self.stops = stops.filter { !$0.isEmpty }
    }

    /// Adds a token; returns the newly released text and whether a stop string was reached (the
    /// text then ends just before it).
    mutating func append(_ id: Int) -> (text: String, stopped: Bool) {
        ids.append(id)
        var text = tokenizer.decode(ids, skipSpecialTokens: true)
        if let stop = stops.compactMap({ text.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
            text = String(text[..<stop.lowerBound])
            return (release(upTo: text), true)
        }
        if text.hasSuffix("\u{FFFD}") { return ("", false) }
        // Hold back the longest tail that some stop string begins with.
        var held = 0
        for stop in stops {
            for length in stride(from: min(stop.count - 1, text.count), to: held, by: -1) where text.hasSuffix(stop.prefix(length)) {
                held = length
                break
            }
        }
        return (release(upTo: String(text.dropLast(held))), false)
    }

    /// Everything not yet released (at the end of generation).
    mutating func flush() -> String {
        release(upTo: tokenizer.decode(ids, skipSpecialTokens: true))
    }

    private mutating func release(upTo text: String) -> String {
        guard text.hasPrefix(released), text.count > released.count else { return "" }
        let piece = String(text.dropFirst(released.count))
        released = text
        return piece
    }
}
