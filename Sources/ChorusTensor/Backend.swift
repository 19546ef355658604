/// Where tensor work runs. Every op in this module runs on the CPU backend (OpenBLAS for products,
/// `Parallel` for the rest); a GPU backend takes this seat, and services choose one through
/// `Backend.select` at start, so an unknown or unbuilt device fails there with a clear message.
public struct Backend: Sendable, Equatable, CustomStringConvertible {
    /// The kinds of device a `--device` value can name.
    public enum Kind: String, Sendable, CaseIterable {
        case cpu
        case cuda
    }

    public let kind: Kind
    /// The device's index among its kind (cuda:1); 0 for the CPU.
    public let index: Int

    /// The backends this build can run on.
    public static let available: [Kind] = [.cpu]

    /// The CPU: OpenBLAS for matrix products, the dispatch pool for everything else.
    public static let cpu = Backend(kind: .cpu, index: 0)

    public var description: String { kind == .cpu ? "cpu" : "\(kind.rawValue):\(index)" }

    /// The backend a `--device` value names ("cpu", "cuda:0"), if this build has it.
    public static func select(_ device: String) throws -> Backend {
        let parts = device.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let kind = Kind(rawValue: String(parts[0])) else {
            throw BackendError(message: "unknown device '\(device)'; this build runs on \(availableList)")
        }
        var index = 0
        if parts.count == 2 {
            guard let number = Int(parts[1]), (0...63).contains(number) else {  // checked: parsing text gives nil, never traps
                throw BackendError(message: "device '\(device)': the index after ':' must be a number 0 ... 63")
            }
            index = number
        }
        guard available.contains(kind) else {
            throw BackendError(message: "device '\(device)': this build has no \(kind.rawValue.uppercased()) backend; it runs on \(availableList)")
        }
        guard kind != .cpu || index == 0 else {
            throw BackendError(message: "device '\(device)': there is one CPU backend, 'cpu'")
        }
        return Backend(kind: kind, index: index)
    }

    static var availableList: String { available.map(\.rawValue).joined(separator: ", ") }
}

public struct BackendError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
