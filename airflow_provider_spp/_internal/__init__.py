"""The provider's internals: free to change between releases. Import only the public modules."""
