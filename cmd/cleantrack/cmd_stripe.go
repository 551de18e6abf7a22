package main

func stripeCommands() []command {
	return nil
}
