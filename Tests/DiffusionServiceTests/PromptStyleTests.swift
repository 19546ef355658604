import ChorusStableDiffusion
import DiffusionService
import Foundation
import Testing

/// Styles as AUTOMATIC1111 applies them (`modules/styles.py`: merge_prompts, apply_styles_to_prompt), style
/// files in JSON, YAML and A1111's styles.csv, and the prompt builder.
@Suite struct PromptStyleTests {
    func file(_ name: String, _ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "chorus-styles-\(UUID().uuidString)-\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func templatesTakeThePromptAtTheirPlaceholderOrAfterAComma() {
        #expect(PromptStyle.merge("photo of {prompt}, 35mm", into: "a cat") == "photo of a cat, 35mm")
        #expect(PromptStyle.merge("oil painting", into: " a cat ") == "a cat, oil painting")
        #expect(PromptStyle.merge("oil painting", into: "") == "oil painting")
        #expect(PromptStyle.merge("", into: "a cat") == "a cat")
        #expect(PromptStyle.merge("{prompt} and {prompt}", into: "x") == "x and x")
    }

    @Test func stylesApplyInTurnToPromptAndNegative() throws {
        let library = PromptStyleLibrary([PromptStyle(name: "a", prompt: "A({prompt})", negativePrompt: "blurry"),
                                          PromptStyle(name: "b", prompt: "b-style", negativePrompt: "{prompt}, text")])
        let (prompt, negative) = try library.apply(["a", "b"], prompt: "cat", negative: "dog")
        #expect(prompt == "A(cat), b-style" && negative == "dog, blurry, text")
        #expect(throws: PromptStyleError.unknown("nope", known: ["a", "b"])) { try library.apply(["nope"], prompt: "", negative: "") }
        #expect(PromptStyleError.unknown("nope", known: ["a", "b"]).description == "unknown style 'nope'; the styles are: a, b")
    }

    @Test func theBuiltInStylesCoverTheSeedsCategoriesWithoutArtists() throws {
        let names = PromptStyleLibrary.builtIn.names
        for wanted in ["photo", "oil-painting", "anime", "3d-render", "pixel-art", "cinematic", "watercolor"] { #expect(names.contains(wanted)) }
        for style in PromptStyleLibrary.builtIn.styles {
            #expect(style.prompt.contains("{prompt}"), "\(style.name)")
            #expect(!style.prompt.lowercased().contains(" by "), "\(style.name) names no artist")
        }
    }

    @Test func aUserFileAddsAndReplacesStyles() throws {
        let json = try file("styles.json", #"{"styles": [{"name": "photo", "prompt": "my photo of {prompt}"}, {"name": "mine", "prompt": "{prompt}, mine", "negative_prompt": "theirs"}]}"#)
        let library = PromptStyleLibrary.builtIn.adding(try PromptStyleLibrary.load(path: json))
        #expect(try library.style("photo").prompt == "my photo of {prompt}")
        #expect(try library.style("mine").negativePrompt == "theirs")
        #expect(library.names.count == PromptStyleLibrary.builtIn.names.count + 1)
        let csv = try file("styles.csv", "name,prompt,negative_prompt\nsimple,\"{prompt}, simple, \"\"quoted\"\"\",bad\n\"two\nlines\",x,\n")
        let rows = try PromptStyleLibrary.load(path: csv)
        #expect(rows == [PromptStyle(name: "simple", prompt: "{prompt}, simple, \"quoted\"", negativePrompt: "bad"),
                         PromptStyle(name: "two\nlines", prompt: "x", negativePrompt: "")])
    }

    @Test func aBrokenFileIsRefusedNamingTheLine() throws {
        let missingPrompt = try file("bad.json", "{\"styles\": [\n  {\"name\": \"ok\", \"prompt\": \"x\"},\n  {\"name\": \"broken\"}\n]}")
        #expect(throws: PromptStyleError.file(path: missingPrompt, line: 3, problem: "a style has no \"prompt\" (each needs \"name\" and \"prompt\")")) {
            try PromptStyleLibrary.load(path: missingPrompt)
        }
        let syntax = try file("syntax.json", "{\"styles\": [\n  {\"name\": \"ok\", \"prompt\": \"x\"},\n  oops\n]}")
        do {
            _ = try PromptStyleLibrary.load(path: syntax)
            Issue.record("invalid JSON was accepted")
        } catch let PromptStyleError.file(path, line, problem) {
            #expect(path == syntax && line == 3 && problem.contains("not valid JSON"), "\(line): \(problem)")
        }
        let twice = try file("twice.csv", "name,prompt\na,x\na,y\n")
        #expect(throws: PromptStyleError.file(path: twice, line: 3, problem: "style 'a' is defined twice")) { try PromptStyleLibrary.load(path: twice) }
        let ragged = try file("ragged.csv", "name,prompt,negative_prompt\na,x\n")
        #expect(throws: PromptStyleError.file(path: ragged, line: 2, problem: "2 fields; the header has 3")) { try PromptStyleLibrary.load(path: ragged) }
        #expect(throws: PromptStyleError.self) { try PromptStyleLibrary.load(path: "/nonexistent/styles.json") }
    }

    @Test func yamlFilesHoldAListOfStylesOrAStylesKey() throws {
        let keyed = try file("styles.yaml", """
            # my styles
            styles:
              - name: soft
                prompt: "soft watercolor of {prompt}, paper texture"
                negative_prompt: photo, harsh lines
              - name: plain
                prompt: '{prompt}'
            """)
        #expect(try StyleFile.load(path: keyed) == [PromptStyle(name: "soft", prompt: "soft watercolor of {prompt}, paper texture", negativePrompt: "photo, harsh lines"),
                                                    PromptStyle(name: "plain", prompt: "{prompt}")])
        let bare = try file("styles.yml", "- {name: a, prompt: 'x {prompt}'}\n")
        #expect(try StyleFile.load(path: bare) == [PromptStyle(name: "a", prompt: "x {prompt}")])
        // JSON and CSV still go to the library's reader.
        let json = try file("styles.json", #"{"styles": [{"name": "j", "prompt": "{prompt}"}]}"#)
        #expect(try StyleFile.load(path: json).map(\.name) == ["j"])
    }

    @Test func aBrokenYamlFileIsRefusedNamingTheLine() throws {
        let missing = try file("bad.yaml", "styles:\n  - name: ok\n    prompt: x\n  - name: broken\n")
        #expect(throws: PromptStyleError.file(path: missing, line: 4, problem: "a style has no \"prompt\" (each needs \"name\" and \"prompt\")")) {
            try StyleFile.load(path: missing)
        }
        let syntax = try file("syntax.yaml", "styles:\n  - name: ok\n    prompt: \"unclosed\n  - name: next\n")
        do {
            _ = try StyleFile.load(path: syntax)
            Issue.record("invalid YAML was accepted")
        } catch let PromptStyleError.file(path, line, problem) {
            #expect(path == syntax && line >= 3 && problem.contains("not valid YAML"), "\(line): \(problem)")
        }
        let twice = try file("twice.yaml", "- {name: a, prompt: x}\n- {name: a, prompt: y}\n")
        #expect(throws: PromptStyleError.file(path: twice, line: 2, problem: "style 'a' is defined twice")) { try StyleFile.load(path: twice) }
        let nested = try file("nested.yaml", "styles:\n  - name: a\n    prompt: [not, text]\n")
        #expect(throws: PromptStyleError.file(path: nested, line: 3, problem: "\"prompt\" is not text")) { try StyleFile.load(path: nested) }
        let notAList = try file("map.yaml", "styles: photo\n")
        #expect(throws: PromptStyleError.file(path: notAList, line: 1, problem: "\"styles\" is not a list")) { try StyleFile.load(path: notAList) }
    }

    @Test func theBuilderJoinsPartsAndMergesNegativesOnce() throws {
        let library = PromptStyleLibrary([PromptStyle(name: "ink", prompt: "ink drawing of {prompt}", negativePrompt: "color, Blurry")])
        let built = try PromptBuild(subject: "a heron", style: "ink", lighting: "dawn light", composition: "wide shot",
                                    extraNegative: ["photo", "color, watermark"]).build(with: library)
        #expect(built.prompt == "ink drawing of a heron, dawn light, wide shot, highly detailed, sharp focus, high resolution")
        let terms = built.negative.components(separatedBy: ", ")
        #expect(terms.prefix(3) == ["lowres", "low quality", "worst quality"])
        #expect(terms.filter { $0.lowercased() == "blurry" }.count == 1 && terms.filter { $0 == "watermark" }.count == 1)
        #expect(terms.suffix(2) == ["color", "photo"], "the style's and the extra terms follow the defaults, each once")
        let bare = try PromptBuild(subject: "a heron", qualityBoosters: false, defaultNegative: false).build(with: library)
        #expect(bare == ("a heron", ""))
    }
}
