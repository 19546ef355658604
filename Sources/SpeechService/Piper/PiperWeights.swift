import ChorusTensor
import Foundation

/// A Piper voice's ONNX initializers under transformers' VitsModel names, and the VitsConfig its
/// shapes imply. (Filled in from scripts/piper_names.py's verified mapping.)
enum PiperWeights {
    static func open(onnx path: String, voice: PiperVoiceConfig) throws -> (WeightSource, VitsConfig) {
        throw WeightFileError(path, "Piper voices are not mapped yet")
    }
}
