import ChorusAPI
import Foundation

/// Prompt expansion, as Fooocus expands a short prompt with its GPT-2 expander: the vision service's
/// language model (its default for text-only chats: SmolLM2 or Gemma 3 from GGUF) rewrites a subject into a
/// fuller image prompt, sampled with the caller's seed and bounded in length.
package enum PromptExpansion {
    package static let instruction = """
        You write prompts for an image generator. Rewrite the user's subject as one vivid image description: \
        the subject, its setting, the light, the colors and the mood, in plain words. Answer with the description \
        only, on one line, in at most 40 words.
        """
    /// New tokens at most: 40 words and some punctuation.
    package static let maxNewTokens: UInt32 = 64

    /// The same options as a pipeline step's JSON.
    package static let generation = ["max_new_tokens": Int(maxNewTokens), "temperature": 0.7, "top_p": 0.9, "stop": ["\n"]] as [String: Any]  // checked: a UInt32 constant, 64

    /// The Chat request that expands `subject`; `seed` 0 draws one.
    package static func request(subject: String, seed: UInt64) -> ChatRequest {
        ChatRequest(messages: [ChatTurn(role: "system", parts: [ChatPart(text: instruction)]),
                               ChatTurn(role: "user", parts: [ChatPart(text: subject)])],
                    generation: GenerationOptions(maxNewTokens: maxNewTokens, temperature: 0.7, topP: 0.9, seed: seed, stop: ["\n"]))
    }

    /// The model's answer as a prompt: one line, quotes and a leading "Prompt:" taken off; the subject itself
    /// when nothing is left.
    package static func prompt(from answer: String, subject: String) -> String {
        var text = answer.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        text = text.trimmingCharacters(in: .whitespaces)
        for prefix in ["Prompt:", "prompt:", "Description:"] where text.hasPrefix(prefix) { text = String(text.dropFirst(prefix.count)) }
        text = text.trimmingCharacters(in: CharacterSet(charactersIn: " \"'“”"))
        return text.isEmpty ? subject : text
    }
}
