"""TurnForge's common library, one subpackage per role (see the README's layout section)."""
