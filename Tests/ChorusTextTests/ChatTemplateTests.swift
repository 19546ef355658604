import Foundation
import Testing
@testable import ChorusText

/// One rendering by jinja2 as transformers sets it up, from scripts/fixtures/make_chat_template_cases.py.
struct ChatTemplateCase: Decodable, CustomTestStringConvertible, Sendable {
    let name: String
    let template: String
    let context: [String: TemplateValue]
    /// jinja2's output, or, for a template that calls raise_exception, the message it raised.
    let expected: String?
    let error: String?

    var testDescription: String { name }

    static let all: [ChatTemplateCase] = (try? Fixtures.decode([ChatTemplateCase].self, from: "chat_template_cases.json")) ?? []

    static func named(_ name: String) throws -> ChatTemplateCase {
        try #require(all.first { $0.name == name })
    }
}

@Suite struct ChatTemplateTests {
    @Test func fixturesLoad() {
        #expect(ChatTemplateCase.all.count >= 50)
    }

    @Test(arguments: ChatTemplateCase.all)
    func matchesJinja(_ reference: ChatTemplateCase) throws {
        let template = try ChatTemplate(reference.template)
        if let expected = reference.expected {
            let rendered = try template.render(reference.context)
            #expect(rendered == expected)
            #expect(rendered.codePoints == expected.codePoints)
        } else {
            let error = #expect(throws: TemplateError.self) { try template.render(reference.context) }
            #expect(error?.kind == .raised)
            #expect(error?.message == reference.error)
        }
    }

    @Test func messagesContextBuildsWhatTransformersPasses() throws {
        let reference = try ChatTemplateCase.named("llava_generation_prompt")
        let messages: [[String: TemplateValue]] = [
            ["role": "user", "content": [["type": "image"], ["type": "text", "text": "What is shown in this image?"]]],
            ["role": "assistant", "content": [["type": "text", "text": "A cat sitting on a red sofa."]]],
            ["role": "user", "content": [["type": "text", "text": "And this one?"], ["type": "image"], ["type": "image"]]],
        ]
        let context = ChatTemplate.messagesContext(messages: messages, addGenerationPrompt: true,
                                                   extra: ["bos_token": "<s>", "eos_token": "</s>"])
        #expect(context["bos_token"] == "<s>")
        #expect(context["eos_token"] == "</s>")
        #expect(context["add_generation_prompt"] == true)
        #expect(try ChatTemplate(reference.template).render(context) == reference.expected)
    }

    @Test func raiseExceptionPassesTheTemplatesMessageOn() throws {
        let reference = try ChatTemplateCase.named("llama2_wrong_order")
        let template = try ChatTemplate(reference.template)
        let error = #expect(throws: TemplateError.self) { try template.render(reference.context) }
        #expect(error?.description == "Conversation roles must alternate user/assistant/user/assistant/...")
        #expect(error?.line == 1)
    }

    @Test(arguments: [
        ("{{ messages | foo }}", "chat template line 1, column 15: unknown filter 'foo'"),
        ("line one\n{% for x in %}", "chat template line 2, column 13: expected an expression, found end of tag"),
        ("{% if a %}\n  x\n{% for m in b %}{% endif %}",
         "chat template line 3, column 17: unexpected 'endif'"),
        ("{% for m in messages %}{{ m }}", "chat template line 1, column 1: 'for' is never closed: expected 'else' or 'endfor'"),
        ("{% macro f() %}{% endmacro %}", "chat template line 1, column 1: unknown tag 'macro'"),
        ("{{ x is frobnicated }}", "chat template line 1, column 9: unknown test 'frobnicated'"),
        ("{{ 'open }}", "chat template line 1, column 4: unterminated string"),
        ("ok {{ x ", "chat template line 1, column 4: missing '}}' to close this tag"),
        ("{# never closed", "chat template line 1, column 1: missing end of comment tag"),
        ("{{ a b }}", "chat template line 1, column 6: expected end of tag, found 'b'"),
        ("{{ f(1, }}", "chat template line 1, column 9: unexpected '}', expected ')'"),
    ])
    func syntaxErrorsSayWhereAndWhat(source: String, message: String) {
        let error = #expect(throws: TemplateError.self) { try ChatTemplate(source) }
        #expect(error?.kind == .syntax)
        #expect(error?.description == message)
    }

    @Test func renderErrorsCarryTheirTagsPosition() throws {
        let template = try ChatTemplate("a\n  {{ 'x' + 1 }}")
        let error = #expect(throws: TemplateError.self) { try template.render([:]) }
        #expect(error?.kind == .render)
        #expect(error?.description == "chat template line 2, column 3: unsupported operand types for '+': string and int")
    }

    @Test func whitespaceControl() throws {
        let source = """
            {% for m in messages %}
                {% if m != 'skip' %}
            [{{ m }}]
                {%- endif %}
            {% endfor %}
            {{- '|' -}}
                end
            """
        #expect(try ChatTemplate(source).render(["messages": ["a", "skip", "b"]]) == "[a][b]|end")
    }

    /// jinja2's default Undefined raises on `missing.attr`; here every use of Undefined stays Undefined.
    @Test func undefinedIsLenient() throws {
        let template = try ChatTemplate("[{{ missing }}{{ missing.attr.deeper }}{{ missing['k'][0] }}]{{ missing.attr is defined }}")
        #expect(try template.render([:]) == "[]False")
    }

    @Test func filtersOnContextValues() throws {
        let template = try ChatTemplate(
            "{{ parts|selectattr('type', 'equalto', 'text')|map(attribute='text')|join(' ')|upper }}|{{ parts|length }}|{{ (parts|first).type }}|{{ extra|default('none given') }}")
        let context: [String: TemplateValue] = ["parts": [["type": "text", "text": "hi"], ["type": "image"], ["type": "text", "text": "there"]]]
        #expect(try template.render(context) == "HI THERE|3|text|none given")
    }

    /// Objects have no insertion order, so tojson and iteration walk keys sorted.
    @Test func objectsWalkKeysSorted() throws {
        let template = try ChatTemplate("{{ d|tojson }} {% for k, v in d.items() %}{{ k }}{% endfor %}")
        #expect(try template.render(["d": ["zeta": 1, "alpha": [true, .none], "mid": 0.5]]) == #"{"alpha": [true, null], "mid": 0.5, "zeta": 1} alphamidzeta"#)
    }

    @Test func parsedTemplateRendersRepeatedly() throws {
        let template = try ChatTemplate("{% set n = n + 1 %}{{ n }}")
        #expect(try template.render(["n": 1]) == "2")
        #expect(try template.render(["n": 1]) == "2")
    }
}
