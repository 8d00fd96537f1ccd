"""Who people are: principals, group membership views, owners, display names."""
