import ChorusTensor

/// The ControlNets of one run and how they steer it (diffusers' `StableDiffusionControlNetPipeline`):
/// each with its control image, embedded once for the run, a scale and the part of the schedule it acts
/// on; in guess mode they see only the conditional half of a guided batch (the unconditional half gets no
/// residuals) and scale their skips from 0.1 to 1.
package struct ControlGuidance: Sendable {
    package struct Net: Sendable {
        package let model: ControlNetModel
        /// The control image through the model's conditioning embedding, one row per latent image.
        package let condition: Tensor
        package var scale: Float = 1
        /// `control_guidance_start` / `_end`: fractions of the steps run.
        package var start: Double = 0, end: Double = 1

        package init(model: ControlNetModel, condition: Tensor, scale: Float = 1, start: Double = 0, end: Double = 1) {
            (self.model, self.condition, self.scale, self.start, self.end) = (model, condition, scale, start, end)
        }

        /// diffusers' `controlnet_keep[i]`: step `i` of `count` lies in [start, end].
        func acts(step i: Int, of count: Int) -> Bool {
            !(Double(i) / Double(count) < start || Double(i + 1) / Double(count) > end)
        }
    }

    package var nets: [Net]
    package var guessMode: Bool

    package init(nets: [Net], guessMode: Bool) {
        self.nets = nets
        // `global_pool_conditions` ControlNets (shuffle-style) are run in guess mode.
        self.guessMode = guessMode || (!nets.isEmpty && nets.allSatisfy(\.model.control.globalPoolConditions))
    }

    /// The summed residuals for the UNet's batch `input` (the scaled latents, doubled when guided) at step
    /// `i` of `count`, or nil where no ControlNet acts.
    func residuals(input: Tensor, timestep: Float, context: Tensor, guided: Bool, step i: Int, of count: Int) -> ControlResiduals? {
        let n = guided ? input.shape[0] / 2 : input.shape[0]
        let conditionalOnly = guessMode && guided
        let sample = conditionalOnly ? input.slice(axis: 0, n..<(2 * n)) : input
        let text = conditionalOnly ? context.slice(axis: 0, n..<(2 * n)) : context
        var total: ControlResiduals?
        for net in nets where net.acts(step: i, of: count) && net.scale != 0 {
            let condition = guided && !conditionalOnly ? Tensor.concatenate([net.condition, net.condition], axis: 0) : net.condition
            let r = net.model(sample, timestep: timestep, context: text, condition: condition, scale: net.scale, guessMode: guessMode)
            total = total.map { $0 + r } ?? r
        }
        guard conditionalOnly, let r = total else { return total }
        func withZeros(_ x: Tensor) -> Tensor { Tensor.concatenate([Tensor(zeros: x.shape), x], axis: 0) }
        return ControlResiduals(down: r.down.map(withZeros), mid: withZeros(r.mid))
    }
}
