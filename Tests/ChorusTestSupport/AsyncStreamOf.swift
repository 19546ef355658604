/// An AsyncSequence over an array, for client-streaming calls in tests.
public struct AsyncStreamOf<Element: Sendable>: AsyncSequence, Sendable {
    let elements: [Element]

    public init(_ elements: [Element]) {
        self.elements = elements
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var index = 0
        let elements: [Element]

        public mutating func next() async -> Element? {
            guard index < elements.count else { return nil }
            defer { index += 1 }
            return elements[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(elements: elements)
    }
}
