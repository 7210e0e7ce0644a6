"""Moved to :mod:`mmquant.models.modeling_utils` (the models' shared base, below the hub); re-exported here for code
that imports it from its old place."""

from ..models.modeling_utils import PushToHubWithCardMixin, check_loading_info

__all__ = ["PushToHubWithCardMixin", "check_loading_info"]
