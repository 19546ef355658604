import ChorusAPI
import ChorusMedia
import ChorusWire
import Foundation

/// What a recipe sees of the request: its named inputs (which a recipe may fill with defaults), how
/// many images it carries, and its videos (whose headers a recipe may read: has it sound?).
struct RecipeInputs {
    var named: [String: String]
    let images: Int
    let videos: [Data]

    /// Whether video `index` has an audio track, from its container's headers (nothing is decoded). A file
    /// FFmpeg cannot read counts as having one: the steps that read it then say what is wrong with it.
    func videoHasAudio(_ index: Int) -> Bool {
        guard videos.indices.contains(index) else { return false }
        guard let file = try? VideoFile(videos[index], limits: VideoLimits(maxBytes: .max, maxSeconds: .greatestFiniteMagnitude, maxFrameSide: 1 << 20)) else { return true }
        return file.info.audio != nil
    }

    subscript(_ name: String) -> String? {
        get { named[name] }
        set { named[name] = newValue }
    }
}

/// The built-in pipelines, usable by name in Compose and POST /v1/pipelines. Each reads the request's
/// images, audio and named inputs; the defaults below fill inputs a caller leaves out.
struct Recipe {
    let summary: String
    let build: (inout RecipeInputs) throws -> [PipelineStep]

    func steps(_ inputs: inout RecipeInputs) throws -> [PipelineStep] { try build(&inputs) }
}

enum Recipes {
    static func step(_ id: String, _ method: String, _ inputs: [(String, String)]) -> PipelineStep {
        PipelineStep(id: id, method: method, inputs: inputs.map { StepInput(field: $0.0, value: $0.1) })
    }

    /// `text` as a JSON string literal (a step value that must stay a string whatever it looks like).
    static func json(_ text: String) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8), as: UTF8.self)
            .dropFirst().dropLast().description
    }

    /// video-qa and describe-video: DescribeVideo and Transcribe side by side, then AskVideo over their outputs.
    static func videoSteps(_ inputs: inout RecipeInputs, question: String, format: String = "TEXT") throws -> [PipelineStep] {
        for (name, value) in [("num_frames", "8"), ("caption_tokens", "48"), ("max_tokens", "0"), ("model", ""), ("answer_model", "")] where inputs[name] == nil {
            inputs[name] = value
        }
        var steps = [step("frames", "vision.DescribeVideo", [
            ("model", "$input.model"), ("video.data", "$video.0"), ("sampling.num_frames", "$input.num_frames"),
            ("generation.max_new_tokens", "$input.caption_tokens"),
        ])]
        var answer: [(String, String)] = [
            ("model", "$input.model"), ("answer_model", "$input.answer_model"), ("question", question), ("mode", "\"captions\""),
            ("captions", "$frames.captions"), ("generation.max_new_tokens", "$input.max_tokens"),
        ]
        if inputs.videoHasAudio(0) {
            steps.append(step("transcript", "speech.Transcribe", [("audio.media", "$video.0"), ("format", "\"\(format)\"")]))
            answer.append(("transcript", "$transcript.result.segments"))
        }
        steps.append(step("answer", "vision.AskVideo", answer))
        return steps
    }

    static let all: [String: Recipe] = [
        "describe-and-speak": Recipe(summary: "image → caption → speech") { _ in [
            step("caption", "vision.Caption", [("image.data", "$image.0")]),
            step("speech", "speech.Synthesize", [("text", "$caption.text"), ("format", "\"WAV\"")]),
        ] },
        // Without an image the question goes to the vision service's chat as text, which a language model
        // answers (the service's default for text-only conversations); with one, LLaVA answers it. With
        // `upstream_model`, an upstream server's model (GPT-4V-class) answers instead, the image sent as a data URL.
        "spoken-question": Recipe(summary: "audio question (+ image) → transcript → answer (language model, or LLaVA on the image; upstream_model: an upstream model) → speech") { inputs in
            let answer: PipelineStep
            if let upstream = inputs["upstream_model"], !upstream.isEmpty {
                if inputs["max_tokens"] == nil { inputs["max_tokens"] = "256" }
                var message = [("model", "$input.upstream_model"), ("max_tokens", "$input.max_tokens"), ("messages.0.role", "\"user\"")]
                if inputs.images > 0 {
                    message += [("messages.0.content.0.type", "\"image_url\""), ("messages.0.content.0.image_url.url", "$image.0.data_url")]
                }
                let text = inputs.images > 0 ? "messages.0.content.1" : "messages.0.content.0"
                answer = step("answer", "upstream.chat", message + [(text + ".type", "\"text\""), (text + ".text", "$transcript.result.text")])
            } else if inputs.images == 0 {
                answer = step("answer", "vision.Chat", [("messages.0.role", "\"user\""), ("messages.0.parts.0.text", "$transcript.result.text")])
            } else {
                answer = step("answer", "vision.Ask", [("image.data", "$image.0"), ("question", "$transcript.result.text")])
            }
            return [
                step("transcript", "speech.Transcribe", [("audio", "$audio.0")]),
                answer,
                step("speech", "speech.Synthesize", [("text", "$answer.text"), ("format", "\"WAV\"")]),
            ]
        },
        "augment": Recipe(summary: "image → caption → N img2img variants (inputs: variants, default 3; strength, default 0.5)") { inputs in
            let count = Int(inputs["variants"] ?? "3") ?? 0
            guard (1...8).contains(count) else { throw WireStatus(.invalidArgument, "augment makes 1 ... 8 variants (input 'variants')") }
            if inputs["strength"] == nil { inputs["strength"] = "0.5" }
            return [step("caption", "vision.Caption", [("image.data", "$image.0")])] + (1...count).map { i in
                step("variant-\(i)", "diffusion.ImageToImage", [("init_image.data", "$image.0"), ("strength", "$input.strength"),
                                                                ("params.prompt", "$caption.text"), ("params.seed", "\(i)")])
            }
        },
        "transcribe-and-illustrate": Recipe(summary: "audio → transcript → image") { _ in [
            step("transcript", "speech.Transcribe", [("audio", "$audio.0")]),
            step("illustration", "diffusion.TextToImage", [("prompt", "$transcript.result.text")]),
        ] },
        // A subject and a style become a prompt and negative (DiffusionService's PromptBuild); with expand, the
        // vision service's language model first enriches the subject (PromptExpansion). The generate step's result
        // carries the prompt and negative it ran.
        "craft-and-generate": Recipe(summary: "subject + style (+ expand: a language model enriches the subject) → built prompt and negative → image (inputs: subject; style, expand, seed, steps, model)") { inputs in
            guard let subject = inputs["subject"], !subject.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw WireStatus(.invalidArgument, "craft-and-generate needs the input 'subject'")
            }
            for (name, value) in [("style", ""), ("seed", "0"), ("steps", "0"), ("model", "")] where inputs[name] == nil { inputs[name] = value }
            var steps: [PipelineStep] = [], subjectValue = "$input.subject"
            if ["true", "1", "yes"].contains(inputs["expand"]?.lowercased() ?? "") {
                let generation = try JSONSerialization.data(withJSONObject: PromptExpansion.generation)
                steps.append(step("expand", "vision.Chat", [
                    ("messages.0.role", "\"system\""), ("messages.0.parts.0.text", Self.json(PromptExpansion.instruction)),
                    ("messages.1.role", "\"user\""), ("messages.1.parts.0.text", "$input.subject"),
                    ("generation", String(decoding: generation, as: UTF8.self)), ("generation.seed", "$input.seed"),
                ]))
                subjectValue = "$expand.text"
            }
            steps.append(step("generate", "diffusion.TextToImage", [
                ("model", "$input.model"), ("build.subject", subjectValue), ("build.style", "$input.style"),
                ("seed", "$input.seed"), ("steps", "$input.steps"),
            ]))
            return steps
        },
        // A sketch or photo's Canny edges steer a ControlNet run (DiffusionService finds the edges); the result
        // carries the edge map (control_images) beside the image.
        "sketch-to-image": Recipe(summary: "image → Canny edges → ControlNet txt2img; the result holds the edge map and the image (inputs: prompt, controlnet; low, high, scale, seed, steps, model)") { inputs in
            guard inputs.images > 0 else { throw WireStatus(.invalidArgument, "sketch-to-image needs an image (the sketch)") }
            for name in ["prompt", "controlnet"] where (inputs[name] ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
                throw WireStatus(.invalidArgument, "sketch-to-image needs the input '\(name)'\(name == "controlnet" ? " (a loaded canny ControlNet's name)" : "")")
            }
            for (name, value) in [("low", "100"), ("high", "200"), ("scale", "1"), ("seed", "0"), ("steps", "0"), ("model", "")] where inputs[name] == nil {
                inputs[name] = value
            }
            return [step("generate", "diffusion.TextToImage", [
                ("model", "$input.model"), ("prompt", "$input.prompt"), ("seed", "$input.seed"), ("steps", "$input.steps"),
                ("controlnets.0.model", "$input.controlnet"), ("controlnets.0.image.data", "$image.0"),
                ("controlnets.0.preprocessor", "\"canny\""), ("controlnets.0.low_threshold", "$input.low"),
                ("controlnets.0.high_threshold", "$input.high"), ("controlnets.0.conditioning_scale", "$input.scale"),
            ])]
        },
        // Frames and speech at the same time: each sampled frame captioned (vision) while the audio track is
        // transcribed (speech), then one answer over both on one timeline. A video without sound skips the speech.
        "video-qa": Recipe(summary: "video + question → frame captions ‖ speech transcript → an answer citing times (inputs: question; num_frames, default 8; caption_tokens, default 48; max_tokens; model, answer_model)") { inputs in
            guard !inputs.videos.isEmpty else { throw WireStatus(.invalidArgument, "video-qa needs a video") }
            guard let question = inputs["question"], !question.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw WireStatus(.invalidArgument, "video-qa needs the input 'question'")
            }
            return try videoSteps(&inputs, question: "$input.question")
        },
        // The same fan-out, asked for a timestamped summary; the transcript step's result holds the speech as SRT.
        "describe-video": Recipe(summary: "video → frame captions ‖ speech transcript (SRT) → a timestamped summary (inputs: num_frames, default 8; caption_tokens; max_tokens; model, answer_model)") { inputs in
            guard !inputs.videos.isEmpty else { throw WireStatus(.invalidArgument, "describe-video needs a video") }
            return try videoSteps(&inputs, question: json("Summarize the video as a list of moments, each starting with its time (MM:SS)."), format: "SRT")
        },
        "zero-shot": Recipe(summary: "image + labels (input 'labels', a JSON list) → probabilities") { inputs in
            guard inputs["labels"] != nil else { throw WireStatus(.invalidArgument, "zero-shot needs the input 'labels' (a JSON list of strings)") }
            return [step("classify", "vision.Classify", [("image.data", "$image.0"), ("labels", "$input.labels")])]
        },
    ]
}
