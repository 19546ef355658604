/// A prompt built from parts, as the seeds' prompt engineer builds one: a subject, lighting and composition
/// terms, a style from the library, quality boosters; and a negative prompt from a curated default, the
/// style's negative and the caller's extra terms. No artist names are added anywhere: the built-in styles
/// describe media and looks, not people.
public struct PromptBuild: Equatable, Sendable {
    public var subject: String
    public var style = ""
    public var qualityBoosters = true
    public var lighting = ""
    public var composition = ""
    public var extraNegative: [String] = []
    public var defaultNegative = true

    public init(subject: String, style: String = "", qualityBoosters: Bool = true, lighting: String = "", composition: String = "",
                extraNegative: [String] = [], defaultNegative: Bool = true) {
        (self.subject, self.style, self.qualityBoosters, self.lighting) = (subject, style, qualityBoosters, lighting)
        (self.composition, self.extraNegative, self.defaultNegative) = (composition, extraNegative, defaultNegative)
    }

    public static let boosters = ["highly detailed", "sharp focus", "high resolution"]

    /// What a negative prompt most often has to say (the seeds: negative prompts matter most).
    public static let defaultNegativeTerms = [
        "lowres", "low quality", "worst quality", "blurry", "out of focus", "jpeg artifacts", "noise", "deformed",
        "disfigured", "bad anatomy", "bad proportions", "extra limbs", "extra fingers", "mutated hands", "watermark",
        "signature", "text", "logo", "cropped", "out of frame",
    ]

    /// prompt = the style's template around "subject, lighting, composition", then the boosters; negative =
    /// the default terms, the style's negative and the extra terms, split at commas, each term once (the
    /// first spelling, compared without case), in that order.
    public func build(with library: PromptStyleLibrary) throws -> (prompt: String, negative: String) {
        let core = [subject, lighting, composition].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        var prompt = core.joined(separator: ", "), negative = ""
        if !style.isEmpty { (prompt, negative) = try library.apply([style], prompt: prompt, negative: "") }
        if qualityBoosters { prompt = PromptStyle.merge(Self.boosters.joined(separator: ", "), into: prompt) }
        let terms = (defaultNegative ? Self.defaultNegativeTerms : []) + [negative] + extraNegative
        return (prompt, Self.uniqueTerms(terms).joined(separator: ", "))
    }

    /// Comma-separated terms, trimmed, each once (compared without case), in order of first appearance.
    public static func uniqueTerms(_ texts: [String]) -> [String] {
        var seen = Set<String>(), out: [String] = []
        for text in texts {
            for term in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !term.isEmpty {
                if seen.insert(term.lowercased()).inserted { out.append(term) }
            }
        }
        return out
    }
}

extension PromptStyleLibrary {
    /// The built-in styles, for the looks people ask for most (photo, painting, anime, 3D, pixel art, film…).
    public static let builtIn = PromptStyleLibrary([
        PromptStyle(name: "photo", prompt: "photograph of {prompt}, 50mm lens, natural colors, detailed skin and textures",
                    negativePrompt: "drawing, painting, illustration, cartoon, anime, render, 3d, sketch"),
        PromptStyle(name: "cinematic", prompt: "cinematic film still of {prompt}, shallow depth of field, anamorphic, film grain, color graded",
                    negativePrompt: "cartoon, anime, drawing, painting, flat lighting, oversaturated"),
        PromptStyle(name: "analog-film", prompt: "analog film photo of {prompt}, faded film, grain, vintage colors, 35mm",
                    negativePrompt: "digital, painting, drawing, 3d render, oversaturated"),
        PromptStyle(name: "oil-painting", prompt: "oil painting of {prompt}, visible brushstrokes, canvas texture, rich colors",
                    negativePrompt: "photo, photograph, 3d render, smooth, digital art"),
        PromptStyle(name: "watercolor", prompt: "watercolor painting of {prompt}, soft washes, paper texture, loose edges",
                    negativePrompt: "photo, 3d render, hard edges, oil paint"),
        PromptStyle(name: "anime", prompt: "anime illustration of {prompt}, clean line art, cel shading, vibrant colors",
                    negativePrompt: "photo, photorealistic, 3d render, realistic skin"),
        PromptStyle(name: "comic-book", prompt: "comic book panel of {prompt}, bold ink outlines, halftone shading, dynamic",
                    negativePrompt: "photo, photorealistic, 3d render, blurry"),
        PromptStyle(name: "3d-render", prompt: "3d render of {prompt}, octane render, global illumination, soft shadows, studio",
                    negativePrompt: "photo, drawing, painting, sketch, flat"),
        PromptStyle(name: "low-poly", prompt: "low poly 3d model of {prompt}, flat shaded facets, simple geometry, clean background",
                    negativePrompt: "photo, noisy, detailed textures, painting"),
        PromptStyle(name: "isometric", prompt: "isometric illustration of {prompt}, 45 degree view, clean vector style, miniature diorama",
                    negativePrompt: "photo, perspective distortion, blurry, realistic"),
        PromptStyle(name: "pixel-art", prompt: "pixel art of {prompt}, 16-bit, limited palette, crisp pixels, retro game",
                    negativePrompt: "photo, smooth gradients, blurry, 3d render, anti-aliasing"),
        PromptStyle(name: "line-art", prompt: "line art drawing of {prompt}, black ink on white, clean contours, minimal",
                    negativePrompt: "color, shading, photo, 3d render, painting"),
        PromptStyle(name: "digital-art", prompt: "digital art of {prompt}, concept art, painterly, detailed, trending illustration",
                    negativePrompt: "photo, low detail, sketch"),
        PromptStyle(name: "fantasy-art", prompt: "fantasy artwork of {prompt}, epic, magical atmosphere, intricate details",
                    negativePrompt: "photo, mundane, modern, low detail"),
        PromptStyle(name: "neon-punk", prompt: "neon punk style {prompt}, cyberpunk, vibrant neon lights, night city, high contrast",
                    negativePrompt: "daylight, muted colors, painting, sketch"),
    ])
}
