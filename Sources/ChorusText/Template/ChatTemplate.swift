/// A Hugging Face chat template (the `chat_template` of tokenizer_config.json), parsed once and rendered per
/// request the way transformers' `apply_chat_template` does: jinja2 with `trim_blocks` and `lstrip_blocks`,
/// no autoescaping, and `raise_exception` available to the template.
public struct ChatTemplate: Sendable {
    private let nodes: [TemplateNode]

    public init(_ source: String) throws {
        var parser = try TemplateParser(source)
        nodes = try parser.parseTemplate()
    }

    public func render(_ context: [String: TemplateValue]) throws -> String {
        var renderer = TemplateRenderer(context: context)
        try renderer.render(nodes)
        return renderer.output
    }

    /// The variables transformers passes: `messages`, `add_generation_prompt`, and whatever else the caller
    /// has (usually `bos_token` and `eos_token` from the tokenizer config).
    public static func messagesContext(messages: [[String: TemplateValue]], addGenerationPrompt: Bool,
                                       extra: [String: TemplateValue] = [:]) -> [String: TemplateValue] {
        var context = extra
        context["messages"] = .array(messages.map(TemplateValue.object))
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return context
    }
}
