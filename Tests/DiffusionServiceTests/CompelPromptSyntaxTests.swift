import ChorusStableDiffusion
import ChorusTensor
import Foundation
import Testing

/// compel's prompt parser against its own outputs: the syntax of its README, edge cases (escapes, quotes,
/// whitespace pyparsing does and does not skip, malformed weights, blends and conjunctions) and 350 seeded
/// random prompts, recorded by scripts/fixtures/make_compel_cases.py from `PromptParser().parse_conjunction`.
/// Fragments must be the same strings and the weights the same doubles.
@Suite struct CompelPromptSyntaxTests {
    enum Expected {
        case parsed(CompelPrompt)
        case error
        case unsupported
    }

    static let cases: [(prompt: String, expected: Expected)] = {
        let url = Bundle.module.url(forResource: "Fixtures/prompts/compel_parse", withExtension: "json")!
        let json = try! JSONSerialization.jsonObject(with: try! Data(contentsOf: url)) as! [String: Any]
        func run(_ list: Any) -> [CompelPrompt.Fragment] {
            (list as! [[String]]).map { CompelPrompt.Fragment($0[0], Double($0[1])!) }
        }
        return (json["cases"] as! [[String: Any]]).map { c in
            let prompt = c["prompt"] as! String
            if c["error"] != nil { return (prompt, .error) }
            if c["unsupported"] != nil { return (prompt, .unsupported) }
            let parts = (c["parts"] as! [[String: Any]]).map { part -> CompelPrompt.Part in
                if let fragments = part["fragments"] { return .fragments(run(fragments)) }
                return .blend((part["blend"] as! [Any]).map(run), weights: (part["weights"] as! [String]).map { Double($0)! },
                              normalize: part["normalize"] as! Bool)
            }
            return (prompt, .parsed(CompelPrompt(parts: parts, weights: (c["weights"] as! [String]).map { Double($0)! })))
        }
    }()

    @Test func everyRecordedPromptParsesAsCompelParsesIt() throws {
        #expect(Self.cases.count >= 400)
        for (prompt, expected) in Self.cases {
            switch expected {
            case .parsed(let reference):
                do {
                    let parsed = try CompelPrompt(parsing: prompt)
                    #expect(parsed == reference, "\(prompt.debugDescription)")
                } catch {
                    Issue.record("\(prompt.debugDescription): \(error)")
                }
            case .error:
                #expect(throws: CompelPrompt.SyntaxError.self, "\(prompt.debugDescription): compel raises") { try CompelPrompt(parsing: prompt) }
            case .unsupported:
                #expect(performing: { try CompelPrompt(parsing: prompt) }, throws: { error in
                    if case CompelPrompt.SyntaxError.unsupported = error { return true }
                    return false
                })
            }
        }
    }

    @Test func readmeSyntaxWeighsEachFragment() throws {
        let parsed = try CompelPrompt(parsing: "a cat++ on a (wooden chair)0.5, \"soft light\"-")
        #expect(parsed.parts == [.fragments([
            .init("a", 1), .init("cat", 1.1 * 1.1), .init("on a", 1), .init("wooden chair", 0.5), .init(",", 1), .init("soft light", 0.9),
        ])])
    }

    @Test func malformedAndHostilePromptsAreRefusedByNameOrParse() throws {
        #expect(throws: CompelPrompt.SyntaxError.weightCount(operator: ".blend", prompts: 2, weights: 1)) {
            try CompelPrompt(parsing: "(\"a\", \"b\").blend(1)")
        }
        #expect(throws: CompelPrompt.SyntaxError.notANumber("x")) { try CompelPrompt(parsing: "(\"a\", \"b\").and(x, 1)") }
        #expect(throws: CompelPrompt.SyntaxError.unparsable(at: 1)) { try CompelPrompt(parsing: "a\u{0C}b") }
        #expect(throws: CompelPrompt.SyntaxError.weightOverflows(String(repeating: "+", count: 8000))) {
            try CompelPrompt(parsing: "a" + String(repeating: "+", count: 8000))
        }
        #expect(throws: CompelPrompt.SyntaxError.self) { try CompelPrompt(parsing: "(a)" + String(repeating: "9", count: 400) + ".0") }
        #expect(throws: CompelPrompt.SyntaxError.nestedTooDeep(limit: 64)) {
            try CompelPrompt(parsing: String(repeating: "(", count: 5000) + "a" + String(repeating: ")", count: 5000))
        }
        // Deep but allowed nesting parses in linear time (the targets are remembered by position).
        let deep = try CompelPrompt(parsing: String(repeating: "(", count: 60) + "a" + String(repeating: ")+", count: 60))
        #expect(deep.parts == [.fragments([.init("a", (0..<60).reduce(1.0) { x, _ in x * 1.1 })])])
        // 10,000-character prompts of syntax: a result or a named error, never a trap.
        var generator = SplitMix64(seed: 7)
        let alphabet = Array("ab (),.+-\"\\:=0123456789 日\u{0}\u{0C}\u{3000}\n\t".unicodeScalars)
        for _ in 0..<20 {
            var prompt = String.UnicodeScalarView()
            for _ in 0..<10_000 { prompt.append(alphabet.randomElement(using: &generator)!) }
            do {
                _ = try CompelPrompt(parsing: String(prompt))
            } catch is CompelPrompt.SyntaxError {
            }
        }
    }
}
