import Foundation
import Testing
@testable import ChorusText

/// Encoding must stay fast enough for long transcripts and prompts: words are cached and merges looked
/// up by id pairs. The bound is loose (a debug build on a busy machine) and catches quadratic behaviour.
@Suite struct EncodeSpeedTests {
    @Test func longTextEncodesQuickly() throws {
        let tokenizer = try TokenizerLoader.load(folder: Fixtures.folder("whisper"))
        let sentence = "The quick brown fox jumps over the lazy dog, and 1234 naïve cafés say 👋.  "
        let text = String(repeating: sentence, count: 2_000)   // ≈ 150 k characters

        let clock = ContinuousClock()
        var ids: [Int] = []
        let elapsed = clock.measure { ids = tokenizer.encode(text) }

        let once = tokenizer.encode(sentence).dropFirst(2).dropLast()
        #expect(ids.count > 2_000 * (once.count - 2))
        #expect(elapsed < .seconds(20), "encoding 150 k characters took \(elapsed)")
        print("encoded \(text.unicodeScalars.count) characters into \(ids.count) ids in \(elapsed)")
    }
}

/// Servers share one tokenizer between requests; the word cache must survive concurrent use.
@Suite struct ConcurrentEncodeTests {
    @Test func concurrentEncodesAgree() throws {
        let tokenizer = try TokenizerLoader.load(folder: Fixtures.folder("whisper"))
        let texts = (0..<64).map { "request \($0): the quick brown fox \($0 * 7919) jumps" }
        let expected = texts.map(tokenizer.encode)
        let results = ConcurrentResults(count: texts.count)
        DispatchQueue.concurrentPerform(iterations: texts.count * 4) { index in
            results.set(index % texts.count, tokenizer.encode(texts[index % texts.count]))
        }
        #expect(results.values == expected)
    }
}

private final class ConcurrentResults: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [[Int]]

    init(count: Int) { storage = Array(repeating: [], count: count) }

    func set(_ index: Int, _ value: [Int]) {
        lock.lock()
        storage[index] = value
        lock.unlock()
    }

    var values: [[Int]] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}
