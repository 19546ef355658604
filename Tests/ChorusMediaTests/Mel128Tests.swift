import Foundation
import Testing
@testable import ChorusMedia

/// 128 bins (Whisper large-v3): the whole feature matrix against transformers' WhisperFeatureExtractor
/// (scripts/fixtures/make_mel_fixtures.py; the shared fixtures only cover 80 bins).
@Suite struct Mel128Tests {
    @Test func featuresMatchTransformers() throws {
        let fixture = try Fixtures.tensors("whisper/mel128.safetensors")
        let mel = try WhisperMel(melBins: 128)
        let features = mel.logMel(try fixture.tensor("audio").floats())
        let worst = maxAbsDifference(features, try fixture.tensor("input_features").floats())
        #expect(worst.value <= 1e-4, "max |diff| \(worst.value) at \(worst.index)")
    }
}
