"""Channel adapters: one interface (`base.Adapter`), one module per provider kind."""
