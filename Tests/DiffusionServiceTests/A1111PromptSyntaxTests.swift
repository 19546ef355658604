import ChorusStableDiffusion
import ChorusTensor
import Foundation
import Testing

/// AUTOMATIC1111's prompt-attention parser against its own outputs: its docstring's cases, edge cases and 200
/// seeded random prompts, recorded by scripts/fixtures/make_prompt_attention_cases.py from its
/// `parse_prompt_attention`. Pieces must be the same strings and the weights the same doubles.
@Suite struct A1111PromptSyntaxTests {
    struct Case {
        let prompt: String
        let pieces: [A1111Prompt.Piece]?
    }

    static let cases: [Case] = {
        let url = Bundle.module.url(forResource: "Fixtures/prompts/a1111_attention", withExtension: "json")!
        let json = try! JSONSerialization.jsonObject(with: try! Data(contentsOf: url)) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).map { c in
            let pieces = (c["parsed"] as? [[Any]])?.map { A1111Prompt.Piece(text: $0[0] as! String, weight: Double($0[1] as! String)!) }
            return Case(prompt: c["prompt"] as! String, pieces: pieces)
        }
    }()

    @Test func everyRecordedPromptParsesAsA1111ParsesIt() throws {
        #expect(Self.cases.count >= 240)
        for c in Self.cases {
            if let expected = c.pieces {
                let parsed = try A1111Prompt(parsing: c.prompt)
                #expect(parsed.pieces == expected, "\(c.prompt.debugDescription)")
            } else {
                #expect(throws: A1111Prompt.SyntaxError.self, "\(c.prompt.debugDescription): A1111 raises") { try A1111Prompt(parsing: c.prompt) }
            }
        }
    }

    @Test func theDocstringsExampleWeighsEachPiece() throws {
        let parsed = try A1111Prompt(parsing: "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).")
        #expect(parsed.pieces.map(\.text) == ["a ", "house", " ", "on", " a ", "hill", ", sun, ", "sky", "."])
        #expect(parsed.pieces[1].weight == 1.3 * 1.1 * 1.1)
        #expect(parsed.pieces[7].weight == 1.1 * 1.1 * 1.1 * 1.1)
    }

    @Test func breakIsAPieceOfItsOwnUnlessWeighted() throws {
        #expect(try A1111Prompt(parsing: "a cat BREAK a dog").pieces.map(\.isBreak) == [false, true, false])
        #expect(try A1111Prompt(parsing: "(a BREAK b:1.5)").pieces.contains { $0.isBreak } == false)
        #expect(try A1111Prompt(parsing: "aBREAK b").pieces.count == 1)
    }

    @Test func weightsThatAreNotNumbersOrOverflowAreRefusedByName() throws {
        #expect(throws: A1111Prompt.SyntaxError.weightIsNotANumber("1.2.3", scalarOffset: 3)) { try A1111Prompt(parsing: "(x:1.2.3)") }
        let huge = "(x:" + String(repeating: "9", count: 400) + ")"
        #expect(throws: A1111Prompt.SyntaxError.self) { try A1111Prompt(parsing: huge) }
        let deep = String(repeating: "(", count: 8_000) + "x" + String(repeating: ")", count: 8_000)
        #expect(throws: A1111Prompt.SyntaxError.weightOverflows("x")) { try A1111Prompt(parsing: deep) }
        // Python's float() reads any script's decimal digits, and so does this.
        #expect(try A1111Prompt(parsing: "(x:\u{0661}.\u{0665})").pieces == [.init(text: "x", weight: 1.5)])
    }

    /// Ten thousand characters of brackets, escapes, control characters and unicode parse without trapping,
    /// and every character that is not syntax survives into some piece.
    @Test func longAndHostilePromptsParse() throws {
        var generator = SplitMix64(seed: 1111)
        let alphabet = Array("()[]:\\.0123456789 BREAK\u{0}\u{7}\n\té日🙂,".unicodeScalars)
        for _ in 0..<20 {
            var prompt = String.UnicodeScalarView()
            for _ in 0..<10_000 { prompt.append(alphabet.randomElement(using: &generator)!) }
            let text = String(prompt)
            do {
                let pieces = try A1111Prompt(parsing: text).pieces
                let letters = pieces.filter { !$0.isBreak }.map(\.text).joined().unicodeScalars.filter { $0 == "é" }.count
                #expect(letters == text.unicodeScalars.filter { $0 == "é" }.count)
            } catch let error as A1111Prompt.SyntaxError {
                #expect(!error.description.isEmpty)
            }
        }
    }
}
