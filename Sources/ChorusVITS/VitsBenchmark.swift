import Foundation

/// What `chorus bench tts` measures of the model itself, kept beside the model it times.
package struct VitsBenchmark {
    package let voice: VitsVoice

    package init(onnx: String) throws {
        voice = try VitsVoice(name: ((onnx as NSString).lastPathComponent as NSString).deletingPathExtension, piperONNX: onnx)
    }

    private func sentenceIDs(_ text: String) throws -> [[Int]] {
        try EspeakPhonemizer.sentences(text).map { try voice.ids($0).ids }
    }

    /// The ids both engines speak, and the voice's default scales, for the peer.
    package func writeIDs(_ texts: [(String, String)], to url: URL) throws {
        var named: [String: [[Int]]] = [:]
        for (name, text) in texts { named[name] = try sentenceIDs(text) }
        let spec: [String: Any] = ["texts": named, "scales": [voice.defaults.noise, voice.defaults.lengthScale, voice.defaults.noiseW]]
        try JSONSerialization.data(withJSONObject: spec).write(to: url)
    }

    /// Median seconds for all sentences, seconds to the first sentence's audio, seconds of audio.
    package func measure(_ text: String) -> (seconds: Double, firstSeconds: Double, audioSeconds: Double) {
        let sentences = (try? sentenceIDs(text)) ?? []
        let noise = VitsModel.Noise(scale: voice.defaults.noise, durationScale: voice.defaults.noiseW, lengthScale: voice.defaults.lengthScale)
        _ = voice.model.synthesize(sentences[0], noise: noise)
        var totals: [Double] = [], firsts: [Double] = []
        var samples = 0
        let started = Date()
        while totals.count < 3 || (Date().timeIntervalSince(started) < 5 && totals.count < 20) {
            let t0 = Date()
            samples = 0
            for (i, ids) in sentences.enumerated() {
                samples += voice.model.synthesize(ids, noise: noise).waveform.count
                if i == 0 { firsts.append(Date().timeIntervalSince(t0)) }
            }
            totals.append(Date().timeIntervalSince(t0))
        }
        return (totals.sorted()[totals.count / 2], firsts.sorted()[firsts.count / 2], Double(samples) / Double(voice.sampleRate))
    }
}
