"""Test helpers: local servers, fault injection, fixture builders."""
