import ChorusTensor
import Foundation

/// Zero-shot classification as the CLIP paper does it: each label is written into every prompt
/// template, the template embeddings of a label are averaged and renormalised (the paper's prompt
/// ensembling), and the image's cosine similarities times exp(logit_scale) are softmaxed over labels.
enum ZeroShot {
    static let defaultTemplates = ["a photo of a {}."]

    /// The texts to embed, label-major: label i's templates are rows i·T ..< (i+1)·T.
    static func prompts(labels: [String], templates: [String]) -> [String] {
        labels.flatMap { label in templates.map { $0.replacingOccurrences(of: "{}", with: label) } }
    }

    /// Template embeddings [labels·T, D] → one unit vector per label [labels, D].
    static func labelEmbeddings(_ rows: Tensor, templates: Int) -> Tensor {
        let width = rows.shape[1], labels = rows.shape[0] / templates
        var out = [Float](repeating: 0, count: labels * width)
        for l in 0..<labels {
            for t in 0..<templates {
                for i in 0..<width { out[l * width + i] += rows.storage[(l * templates + t) * width + i] }
            }
        }
        return Tensor(shape: [labels, width], storage: out).l2NormalizedRows()
    }

    /// (logits, probabilities) of one image embedding [1, D] against label embeddings [labels, D].
    static func scores(image: Tensor, labels: Tensor, logitScale: Float) -> (logits: [Float], probabilities: [Float]) {
        let logits = (MatMul.matmul(image, labels, transposeB: true) * logitScale).storage
        let top = logits.max() ?? 0
        let exps = logits.map { expf($0 - top) }
        let sum = exps.reduce(0, +)
        return (logits, exps.map { $0 / sum })
    }
}
