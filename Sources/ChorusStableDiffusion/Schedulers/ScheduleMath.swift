import Foundation

/// How the inference timesteps are picked from the training ones (diffusers' `timestep_spacing`; Table 2 of
/// "Common Diffusion Noise Schedules and Sample Steps are Flawed").
package enum TimestepSpacing: String {
    case linspace, leading, trailing

    package init(_ raw: String) throws {
        guard let spacing = TimestepSpacing(rawValue: raw) else {
            throw SchedulerError.unsupported("timestep_spacing \"\(raw)\"")
        }
        self = spacing
    }
}

/// The numpy routines diffusers' set_timesteps is written in, reproduced to the last bit where that decides
/// a timestep (a rounding at .5, an extra element from arange).
package enum ScheduleMath {
    /// numpy.linspace(start, stop, count, endpoint): i·step + start, with `stop` itself last when it is included.
    package static func linspace(_ start: Double, _ stop: Double, _ count: Int, endpoint: Bool = true) -> [Double] {
        let divisions = endpoint ? count - 1 : count
        guard divisions > 0 else { return count == 1 ? [start] : [] }
        let step = (stop - start) / Double(divisions)
        var values = (0..<count).map { Double($0) * step + start }
        if endpoint { values[count - 1] = stop }
        return values
    }

    /// numpy.arange(start, stop, step) in floats: ceil((stop − start)/step) values start + i·δ, δ being the first
    /// two values' difference. The ceil can give one value more than intended: diffusers' "trailing" spacing
    /// makes 62 timesteps for 61 steps (and 103 for 102 …), the last one −1, and so does this.
    package static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let count = Int(((stop - start) / step).rounded(.up))
        let delta = (start + step) - start
        return (0..<max(count, 0)).map { start + Double($0) * delta }
    }

    /// "leading": every ⌊T/n⌋-th timestep from 0, plus steps_offset, descending (SD 1.5 at 50 steps: 981 … 1).
    package static func leading(steps: Int, trainSteps: Int, offset: Int) -> [Double] {
        let ratio = trainSteps / steps
        return (0..<steps).reversed().map { Double($0 * ratio + offset) }
    }

    /// "trailing": round(arange(T, 0, −T/n)) − 1, descending from T − 1.
    package static func trailing(steps: Int, trainSteps: Int) -> [Double] {
        arange(Double(trainSteps), 0, -Double(trainSteps) / Double(steps)).map {
            $0.rounded(.toNearestOrEven) - 1
        }
    }

    /// numpy.interp(x, [0, 1, …, T−1], table): linear between neighbouring entries, the end values outside.
    package static func interp(_ x: Double, _ table: [Float]) -> Double {
        guard x > 0 else { return Double(table[0]) }
        let j = Int(x)
        guard j < table.count - 1 else { return Double(table[table.count - 1]) }
        if Double(j) == x { return Double(table[j]) }
        let slope = Double(table[j + 1]) - Double(table[j])
        return slope * (x - Double(j)) + Double(table[j])
    }

    /// Karras et al. (2022), eq. 5: σ_i = (σmax^(1/ρ) + i/(n−1) · (σmin^(1/ρ) − σmax^(1/ρ)))^ρ with ρ = 7.
    package static func karrasSigmas(min sigmaMin: Double, max sigmaMax: Double, count: Int) -> [Double] {
        let rho = 7.0
        let minInvRho = pow(sigmaMin, 1 / rho), maxInvRho = pow(sigmaMax, 1 / rho)
        return linspace(0, 1, count).map { pow(maxInvRho + $0 * (minInvRho - maxInvRho), rho) }
    }

    /// diffusers' `_sigma_to_t` for each σ: the (fractional) training timestep whose σ_t it is, interpolating
    /// linearly in log σ between the two training timesteps around it.
    package static func timesteps(ofSigmas levels: [Double], trainSigmas: [Float]) -> [Double] {
        // numpy takes log σ_t of the float32 table in float32.
        let logSigmas = trainSigmas.map { Float(log(Double($0))) }
        return levels.map { sigma in
            let logSigma = log(max(sigma, 1e-10))
            // The last training timestep at or below σ (0 if none), at most the second-to-last.
            let low = min(logSigmas.lastIndex { Double($0) <= logSigma } ?? 0, logSigmas.count - 2)
            let lowLog = logSigmas[low], highLog = logSigmas[low + 1]
            // numpy subtracts the two float32 values in float32.
            let w = min(max((Double(lowLog) - logSigma) / Double(lowLog - highLog), 0), 1)
            return (1 - w) * Double(low) + w * Double(low + 1)
        }
    }
}
