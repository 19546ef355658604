import ChorusTensor
import Foundation

/// transformers' `VitsConfig`: the fields inference reads. Piper voices get one derived from their
/// ONNX shapes and .onnx.json (PiperVoice).
package struct VitsConfig: Decodable, Sendable {
    package var vocabSize = 38
    package var hiddenSize = 192
    package var numHiddenLayers = 6
    package var numAttentionHeads = 2
    package var windowSize = 4
    package var useBias = true
    package var ffnDim = 768
    package var ffnKernelSize = 3
    package var flowSize = 192
    package var layerNormEps: Float = 1e-5
    package var hiddenAct = "relu"
    package var upsampleInitialChannel = 512
    package var upsampleRates = [8, 8, 2, 2]
    package var upsampleKernelSizes = [16, 16, 4, 4]
    package var resblockKernelSizes = [3, 7, 11]
    package var resblockDilationSizes = [[1, 3, 5], [1, 3, 5], [1, 3, 5]]
    package var leakyReluSlope: Float = 0.1
    /// HiFi-GAN residual block type: "1" (pairs of convs1/convs2, transformers' only kind) or "2" (one conv
    /// per dilation, Piper's medium voices). Not a transformers field.
    package var resblock = "1"
    package var depthSeparableChannels = 2
    package var depthSeparableNumLayers = 3
    package var durationPredictorFlowBins = 10
    package var durationPredictorTailBound: Float = 5
    package var durationPredictorKernelSize = 3
    package var durationPredictorNumFlows = 4
    package var durationPredictorFilterChannels = 256
    package var useStochasticDurationPrediction = true
    package var priorEncoderNumFlows = 4
    package var priorEncoderNumWavenetLayers = 4
    package var wavenetKernelSize = 5
    package var wavenetDilationRate = 1
    package var numSpeakers = 1
    package var speakerEmbeddingSize = 0
    package var samplingRate = 16000
    package var noiseScale: Float = 0.667
    package var noiseScaleDuration: Float = 0.8
    package var speakingRate: Float = 1

    package enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", windowSize = "window_size", useBias = "use_bias", ffnDim = "ffn_dim"
        case ffnKernelSize = "ffn_kernel_size", flowSize = "flow_size", layerNormEps = "layer_norm_eps", hiddenAct = "hidden_act"
        case upsampleInitialChannel = "upsample_initial_channel", upsampleRates = "upsample_rates"
        case upsampleKernelSizes = "upsample_kernel_sizes", resblockKernelSizes = "resblock_kernel_sizes"
        case resblockDilationSizes = "resblock_dilation_sizes", leakyReluSlope = "leaky_relu_slope", resblock
        case depthSeparableChannels = "depth_separable_channels", depthSeparableNumLayers = "depth_separable_num_layers"
        case durationPredictorFlowBins = "duration_predictor_flow_bins", durationPredictorTailBound = "duration_predictor_tail_bound"
        case durationPredictorKernelSize = "duration_predictor_kernel_size", durationPredictorNumFlows = "duration_predictor_num_flows"
        case durationPredictorFilterChannels = "duration_predictor_filter_channels"
        case useStochasticDurationPrediction = "use_stochastic_duration_prediction"
        case priorEncoderNumFlows = "prior_encoder_num_flows", priorEncoderNumWavenetLayers = "prior_encoder_num_wavenet_layers"
        case wavenetKernelSize = "wavenet_kernel_size", wavenetDilationRate = "wavenet_dilation_rate"
        case numSpeakers = "num_speakers", speakerEmbeddingSize = "speaker_embedding_size", samplingRate = "sampling_rate"
        case noiseScale = "noise_scale", noiseScaleDuration = "noise_scale_duration", speakingRate = "speaking_rate"
    }

    package init() {}

    package init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.read(.vocabSize, into: &vocabSize); try c.read(.hiddenSize, into: &hiddenSize); try c.read(.numHiddenLayers, into: &numHiddenLayers)
        try c.read(.numAttentionHeads, into: &numAttentionHeads); try c.read(.windowSize, into: &windowSize); try c.read(.useBias, into: &useBias)
        try c.read(.ffnDim, into: &ffnDim); try c.read(.ffnKernelSize, into: &ffnKernelSize); try c.read(.flowSize, into: &flowSize)
        try c.read(.layerNormEps, into: &layerNormEps); try c.read(.hiddenAct, into: &hiddenAct)
        try c.read(.upsampleInitialChannel, into: &upsampleInitialChannel); try c.read(.upsampleRates, into: &upsampleRates)
        try c.read(.upsampleKernelSizes, into: &upsampleKernelSizes); try c.read(.resblockKernelSizes, into: &resblockKernelSizes)
        try c.read(.resblockDilationSizes, into: &resblockDilationSizes); try c.read(.leakyReluSlope, into: &leakyReluSlope)
        try c.read(.resblock, into: &resblock)
        try c.read(.depthSeparableChannels, into: &depthSeparableChannels); try c.read(.depthSeparableNumLayers, into: &depthSeparableNumLayers)
        try c.read(.durationPredictorFlowBins, into: &durationPredictorFlowBins); try c.read(.durationPredictorTailBound, into: &durationPredictorTailBound)
        try c.read(.durationPredictorKernelSize, into: &durationPredictorKernelSize); try c.read(.durationPredictorNumFlows, into: &durationPredictorNumFlows)
        try c.read(.durationPredictorFilterChannels, into: &durationPredictorFilterChannels)
        try c.read(.useStochasticDurationPrediction, into: &useStochasticDurationPrediction)
        try c.read(.priorEncoderNumFlows, into: &priorEncoderNumFlows); try c.read(.priorEncoderNumWavenetLayers, into: &priorEncoderNumWavenetLayers)
        try c.read(.wavenetKernelSize, into: &wavenetKernelSize); try c.read(.wavenetDilationRate, into: &wavenetDilationRate)
        try c.read(.numSpeakers, into: &numSpeakers); try c.read(.speakerEmbeddingSize, into: &speakerEmbeddingSize)
        try c.read(.samplingRate, into: &samplingRate); try c.read(.noiseScale, into: &noiseScale)
        try c.read(.noiseScaleDuration, into: &noiseScaleDuration); try c.read(.speakingRate, into: &speakingRate)
    }

    /// Samples of audio per spectrogram frame.
    package var hopLength: Int { upsampleRates.reduce(1, *) }
}
